"""Request strings outside the body, checked before any view: a NUL (`%00`) in the path or the
query string is a 422 in the contract's shape, as the body parser does for JSON."""

from django.http import JsonResponse

from scoring.api.fields import unstorable_string


class RequestStringsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        problem = None
        if (found := unstorable_string(request.path)) is not None:
            problem = (["path"], found[1])
        else:
            for key, values in request.GET.lists():
                if (found := unstorable_string([key, *values])) is not None:
                    problem = (["query", key], found[1])
                    break
        if problem is not None:
            loc, message = problem
            return JsonResponse({"detail": [{"loc": loc, "msg": message, "type": "string_unstorable"}]}, status=422)
        return self.get_response(request)
