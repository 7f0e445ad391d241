"""Weave's file endpoints: `/file/create` (multipart, content-addressed with Weave's digest) and
`/file/content`."""

from django.core.files.uploadedfile import SimpleUploadedFile

from scoring.models import File, Project

# An op's source file and the digest weave 0.54 computed for it (captured).
SOURCE = (
    b"import weave\n\n@weave.op\ndef answer(question: str) -> str:\n"
    b"    return '{\"answer\": \"' + question.upper() + '\"}'\n"
)
DIGEST = "m6uFawO8YdpytI9nxZM5ywq7mS3si90bAJD0OLYH7TY"


def create(api, content=SOURCE, **fields):
    data = {"project_id": "alice/demo", "file": SimpleUploadedFile("obj.py", content, "text/x-python"), **fields}
    return api.post("/file/create", data, format="multipart")


def test_create_answers_weaves_digest(api, user):
    """The digest of an uploaded file is the one the weave client computed for it."""
    response = create(api, expected_digest=DIGEST)
    assert response.status_code == 200, response.content
    assert response.json() == {"digest": DIGEST}
    assert bytes(File.objects.get().content) == SOURCE


def test_same_content_twice_is_stored_once(api, user):
    """Uploading the same bytes again answers the same digest and stores nothing new."""
    assert create(api).json() == create(api).json() == {"digest": DIGEST}
    assert File.objects.count() == 1


def test_wrong_expected_digest_is_409(api, user):
    """A client whose expected digest differs gets Weave's 409, and nothing is stored."""
    response = create(api, expected_digest="not-the-digest")
    assert response.status_code == 409
    assert "expected_digest" in response.json()["detail"]
    assert not File.objects.exists()


def test_content_reads_the_bytes_back(api, user):
    """`/file/content` answers the stored bytes, whatever they are."""
    binary = bytes(range(256))
    digest = create(api, content=binary).json()["digest"]
    response = api.post("/file/content", {"project_id": "alice/demo", "digest": digest}, format="json")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response.content == binary


def test_unknown_digest_is_404(api, user):
    """Reading a digest that was never uploaded is a JSON 404."""
    create(api)
    response = api.post("/file/content", {"project_id": "alice/demo", "digest": "nope"}, format="json")
    assert response.status_code == 404
    assert "nope" in response.json()["detail"]


def test_missing_file_is_422(api, user):
    """A form without its file is a 422 naming the field."""
    response = api.post("/file/create", {"project_id": "alice/demo"}, format="multipart")
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "file"]]


def test_create_in_a_project_of_another_user_is_403(client_for, make_user):
    """The project rule applies to uploads."""
    response = create(client_for(make_user("bob")))
    assert response.status_code == 403
    assert not Project.objects.exists()


def test_content_of_another_users_project_is_403(api, client_for, make_user):
    """Files are read under the project rule too."""
    create(api)
    bob = client_for(make_user("bob"))
    response = bob.post("/file/content", {"project_id": "alice/demo", "digest": DIGEST}, format="json")
    assert response.status_code == 403
