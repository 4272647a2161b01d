"""``per_job.by_value``: vendors that name the rejected items of a batch by a value of theirs (Iterable's
bulk answers list ``invalidEmails``, ``failedUpdates.notFoundUserIds``, ...), not by index.

Expectations are written by hand from the PerJob description in ``sdk/classify.py``.
"""

from sdk.classify import PerJob, ResponseMatch, ResponseRule, classify_response

RULE = ResponseRule(
    when=ResponseMatch(status=[200]),
    outcome="success",
    per_job=PerJob(
        items="events",
        wrapped=True,
        by_value={
            "invalidEmails": "email",
            "failedUpdates.notFoundUserIds": "userId",
            "disallowedEventNames": "eventName",
        },
    ),
)


def _classify(body, request, jobs):
    return classify_response(200, {}, body, [RULE], request=request, jobs=jobs)


def test_items_whose_field_holds_a_listed_value_fail_the_others_succeed():
    request = {
        "events": [
            {"email": "a@x.io", "eventName": "Go"},
            {"email": "bad", "eventName": "Go"},
            {"userId": "u9", "eventName": "Go"},
            {"email": "c@x.io", "eventName": "Blocked"},
        ]
    }
    body = {
        "invalidEmails": ["bad"],
        "failedUpdates": {"notFoundUserIds": ["u9"]},
        "disallowedEventNames": ["Blocked"],
    }
    c = _classify(body, request, 4)
    assert [j.outcome.value for j in c.jobs] == ["success", "abort", "abort", "abort"]
    assert "invalidEmails: bad" in c.jobs[1].reason
    assert c.outcome.value == "success"


def test_every_item_rejected_makes_the_request_abort():
    request = {"events": [{"email": "x"}, {"email": "y"}]}
    c = _classify({"invalidEmails": ["x", "y"]}, request, 2)
    assert c.outcome.value == "abort" and [j.outcome.value for j in c.jobs] == ["abort", "abort"]


def test_per_job_bodies_attribute_several_items_of_one_job():
    request = {"events": [{"email": "a"}, {"email": "b"}, {"email": "c"}]}
    jobs = [{"email": "a"}, {"email": "b"}, {"email": "c"}]  # wrapped: each job's body is one element
    c = _classify({"invalidEmails": ["c"]}, request, jobs)
    assert [j.outcome.value for j in c.jobs] == ["success", "success", "abort"]


def test_nothing_listed_or_no_items_array_leaves_every_job_with_the_rule_outcome():
    c = _classify({"invalidEmails": []}, {"events": [{"email": "a"}]}, 1)
    assert [j.outcome.value for j in c.jobs] == ["success"]
    c = _classify({"invalidEmails": ["a"]}, {"users": [{"email": "a"}]}, 1)  # not the array the rule names
    assert c.outcome.value == "success" and [j.outcome.value for j in c.jobs] == ["success"]


def test_numbers_match_as_text_and_objects_never_match():
    request = {"events": [{"userId": 42}, {"userId": {"id": 42}}, {"email": None}]}
    c = _classify({"failedUpdates": {"notFoundUserIds": ["42"]}}, request, 3)
    assert [j.outcome.value for j in c.jobs] == ["abort", "success", "success"]
