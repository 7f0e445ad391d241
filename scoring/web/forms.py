"""The forms of the pages: the calls filters and "score with…"."""

import json

from django import forms

from scoring.selectors.calls_table import ScorerColumn

FIELD_MAX = 128
VALUE_MAX = 256
SCORE_MAX_CALLS = 1_000  # calls one form may select (a page shows 50)


class CallsFilterForm(forms.Form):
    """Filters of the calls table; every field optional, read from the query string."""

    op = forms.ChoiceField(label="Op", required=False)
    started_from = forms.DateTimeField(
        label="Started from (UTC)", required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    started_to = forms.DateTimeField(
        label="Started before (UTC)", required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    scorer = forms.ChoiceField(label="Score of", required=False)
    field = forms.CharField(
        label="Field", required=False, max_length=FIELD_MAX, widget=forms.TextInput(attrs={"placeholder": "json_valid"})
    )
    value = forms.CharField(
        label="is",
        required=False,
        max_length=VALUE_MAX,
        widget=forms.TextInput(attrs={"placeholder": "false", "list": "score-values"}),
    )

    def __init__(self, data, *, ops: list[str], scorers: list[ScorerColumn]):
        super().__init__(data)
        self.scorers = {s.name: s for s in scorers}
        self.fields["op"].choices = [("", "any op"), *((op, op) for op in ops)]
        self.fields["scorer"].choices = [("", "any score"), *((s.name, s.name) for s in scorers)]

    def clean_field(self):
        field = self.cleaned_data["field"].strip()
        if any(ch in field for ch in "\x00") or not field.isprintable():
            raise forms.ValidationError("A field name is printable text.")
        return field

    def clean_value(self):
        """JSON when it parses (true, false, 3), else the text itself."""
        text = self.cleaned_data["value"].strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text

    def clean(self):
        data = super().clean()
        scorer = self.scorers.get(data.get("scorer") or "")
        if scorer is not None and data.get("value") is None:
            self.add_error("value", "Say which value of the score to show, e.g. false.")
        if scorer is not None and not data.get("field"):
            data["field"] = scorer.field
        return data


class ScoreForm(forms.Form):
    """Score the selected calls with one published scorer."""

    call_ids = forms.MultipleChoiceField(label="Calls", required=True)
    scorer_ref = forms.ChoiceField(label="Score with")
    next = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, data, *, scorers: list[ScorerColumn]):
        super().__init__(data)
        self.fields["scorer_ref"].choices = [(s.ref, s.name) for s in scorers]

    def clean_call_ids(self):
        ids = self.data.getlist("call_ids") if hasattr(self.data, "getlist") else []
        if not ids:
            raise forms.ValidationError("Select at least one call.")
        if len(ids) > SCORE_MAX_CALLS:
            raise forms.ValidationError(f"Select at most {SCORE_MAX_CALLS:,} calls at once.")
        return ids

    def full_clean(self):
        # The calls are whatever ids were posted: job_submit checks each one against the project.
        self.fields["call_ids"].choices = [(c, c) for c in (self.data.getlist("call_ids") if self.data else [])]
        super().full_clean()
