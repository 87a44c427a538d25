import pytest

from shared.job_state import ALLOWED_TRANSITIONS, IllegalTransition, JobStatus, check_transition


def test_terminal_statuses_are_never_left() -> None:
    for status in JobStatus:
        if status.is_terminal():
            assert ALLOWED_TRANSITIONS[status] == frozenset()
            for target in JobStatus:
                with pytest.raises(IllegalTransition):
                    check_transition(status, target)


def test_the_normal_life_of_a_job_is_allowed() -> None:
    check_transition(JobStatus.QUEUED, JobStatus.RUNNING)
    check_transition(JobStatus.RUNNING, JobStatus.CANCELLING)
    check_transition(JobStatus.CANCELLING, JobStatus.CANCELLED)
    check_transition(JobStatus.RUNNING, JobStatus.SUCCEEDED)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (JobStatus.QUEUED, JobStatus.SUCCEEDED),
        (JobStatus.QUEUED, JobStatus.CANCELLING),
        (JobStatus.RUNNING, JobStatus.CANCELLED),
        (JobStatus.CANCELLING, JobStatus.SUCCEEDED),
        (JobStatus.CANCELLING, JobStatus.RUNNING),
    ],
)
def test_illegal_transitions_are_refused(current: JobStatus, target: JobStatus) -> None:
    with pytest.raises(
        IllegalTransition, match=f"{current.value} job cannot become {target.value}"
    ):
        check_transition(current, target)


def test_status_is_a_str_enum() -> None:
    assert JobStatus("running") is JobStatus.RUNNING
    assert JobStatus.RUNNING == "running"
    assert not JobStatus.CANCELLING.is_terminal()
