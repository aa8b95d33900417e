import grpc

from tierlift.router._circuit import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_faults_then_half_opens_for_one_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown_s=10, clock=clock)
    for _ in range(3):
        assert breaker.allow()
        breaker.record(grpc.StatusCode.UNAVAILABLE)
    assert breaker.state == "open" and not breaker.allow()
    clock.now = 10.0
    assert breaker.state == "half_open"
    assert breaker.allow()
    assert not breaker.allow()  # one probe at a time
    breaker.record(grpc.StatusCode.OK)
    assert breaker.state == "closed" and breaker.allow()


def test_failed_probe_reopens_for_another_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown_s=5, clock=clock)
    breaker.record(grpc.StatusCode.DEADLINE_EXCEEDED)
    clock.now = 5.0
    assert breaker.allow()
    breaker.record(grpc.StatusCode.UNAVAILABLE)
    assert breaker.state == "open"
    clock.now = 9.0
    assert not breaker.allow()


def test_bad_requests_do_not_count_against_the_backend() -> None:
    breaker = CircuitBreaker(threshold=2)
    for _ in range(5):
        breaker.record(grpc.StatusCode.INVALID_ARGUMENT)
    assert breaker.state == "closed"
