//! A time bound on a blocking call (PID1 creating a container): a timer sends SIGALRM to
//! the calling thread after the limit and then every 100 ms, with a
//! handler that only notes it and no SA_RESTART, so whatever system call the work is
//! blocked in (libcontainer waiting on its child over a socket, or in waitpid) returns
//! EINTR and the work fails instead of hanging the loop. libcontainer retries none of
//! these on EINTR (checked in its 0.7 sources), so one interruption ends the wait.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::Duration;

use nix::sys::signal::{
    sigaction, SaFlags, SigAction, SigEvent, SigHandler, SigSet, SigevNotify, SigmaskHow, Signal,
};
use nix::sys::time::TimeSpec;
use nix::sys::timer::{Expiration, Timer, TimerSetTimeFlags};
use nix::time::ClockId;

thread_local! {
    /// Whether this thread's timer fired: the timer signals only the thread that armed it,
    /// so bounded calls on several threads at once do not see each other's alarms.
    static FIRED: Cell<bool> = const { Cell::new(false) };
}

/// The handler is installed once and stays: restoring SIGALRM's default action after a
/// call (as this did before) raced with another thread's armed timer, whose signal then
/// ended the process.
static HANDLER: Once = Once::new();
static INSTALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_alarm(_: libc::c_int) {
    // A const-initialised thread local without a destructor: a plain TLS store.
    FIRED.with(|f| f.set(true));
}

/// The limit passed: what the work was doing is unknown, its result was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timed out after {} s", .0.as_secs_f64())]
pub struct TimedOut(pub Duration);

/// A timer that sends SIGALRM to this thread (not any thread of the process) after
/// `first` and then every `every`.
fn thread_timer(first: Duration, every: Duration) -> nix::Result<Timer> {
    let event = SigEvent::new(SigevNotify::SigevThreadId {
        signal: Signal::SIGALRM,
        thread_id: nix::unistd::gettid().as_raw(),
        si_value: 0,
    });
    let mut timer = Timer::new(ClockId::CLOCK_MONOTONIC, event)?;
    timer.set(
        Expiration::IntervalDelayed(TimeSpec::from(first), TimeSpec::from(every)),
        TimerSetTimeFlags::empty(),
    )?;
    Ok(timer)
}

/// Runs `work`, interrupting its blocking system calls once `limit` has passed. Returns
/// its result, or [`TimedOut`] when the alarm fired before it finished. When the alarm
/// cannot be set up, the work runs unbounded.
pub fn bounded<T>(limit: Duration, work: impl FnOnce() -> T) -> Result<T, TimedOut> {
    FIRED.with(|f| f.set(false));
    HANDLER.call_once(|| {
        let handler = SigAction::new(
            SigHandler::Handler(on_alarm),
            SaFlags::empty(),
            SigSet::empty(),
        );
        // SAFETY: the handler only stores to a thread-local flag.
        let ok = unsafe { sigaction(Signal::SIGALRM, &handler) }.is_ok();
        INSTALLED.store(ok, Ordering::SeqCst);
    });
    if !INSTALLED.load(Ordering::SeqCst) {
        return Ok(work());
    }
    let mut alarm = SigSet::empty();
    alarm.add(Signal::SIGALRM);
    let mut old_mask = SigSet::empty();
    let unblocked = nix::sys::signal::pthread_sigmask(
        SigmaskHow::SIG_UNBLOCK,
        Some(&alarm),
        Some(&mut old_mask),
    )
    .is_ok();
    let timer = thread_timer(limit, Duration::from_millis(100));
    let armed = timer.is_ok();
    let result = work();
    drop(timer);
    if unblocked {
        let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old_mask), None);
    }
    if armed && FIRED.with(|f| f.get()) {
        return Err(TimedOut(limit));
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::time::Instant;

    #[test]
    fn a_read_that_would_block_forever_is_interrupted_at_the_limit() {
        let (r, _w) = std::os::unix::net::UnixStream::pair().unwrap();
        let started = Instant::now();
        let out = bounded(Duration::from_millis(200), || {
            let mut buf = [0u8; 1];
            (&r).read(&mut buf)
        });
        assert_eq!(out.unwrap_err(), TimedOut(Duration::from_millis(200)));
        // Bounded, not exact: well under the 60 s a hang would take.
        assert!(started.elapsed() < Duration::from_secs(30));
        // The alarm is gone: waiting past it now does not end the process.
        std::thread::sleep(Duration::from_millis(300));
    }

    #[test]
    fn work_that_finishes_in_time_gives_its_result() {
        assert_eq!(bounded(Duration::from_secs(5), || 41 + 1), Ok(42));
    }
}
