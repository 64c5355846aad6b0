//! Console output of PID1: the first plain line, then `tracing` logs stamped with uptime
//! (`[    0.652] fluxnode: ready in 652 ms`), in the style of the kernel's own printk lines,
//! copied to the log file on /data once it is mounted.

use std::fmt;
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::uptime;

/// Prints one unstamped `fluxnode: ...` line straight to the console.
pub fn first_line(msg: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "fluxnode: {msg}");
    let _ = out.flush();
}

/// The most verbose level shown: 0 error, 1 warn, 2 info, 3 debug, 4 trace.
static LEVEL: AtomicU8 = AtomicU8::new(2);

fn rank(level: Level) -> u8 {
    match level {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        Level::DEBUG => 3,
        Level::TRACE => 4,
    }
}

/// Sets the console and log file level from config (`[log] level`).
pub fn set_level(name: &str) {
    let level = match name {
        "error" => Level::ERROR,
        "warn" => Level::WARN,
        "debug" => Level::DEBUG,
        "trace" => Level::TRACE,
        _ => Level::INFO,
    };
    LEVEL.store(rank(level), Ordering::Relaxed);
}

struct ConsoleFormat;

impl<S, N> FormatEvent<S, N> for ConsoleFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let level = *event.metadata().level();
        if rank(level) > LEVEL.load(Ordering::Relaxed) {
            return Ok(());
        }
        // libcontainer narrates every container it makes: only its warnings and errors.
        let target = event.metadata().target();
        if (target.starts_with("libcontainer") || target.starts_with("libcgroups"))
            && rank(level) > rank(Level::WARN)
        {
            return Ok(());
        }
        let t = uptime::since_boot();
        write!(
            writer,
            "[{:5}.{:03}] fluxnode: ",
            t.as_secs(),
            t.subsec_millis()
        )?;
        if level != Level::INFO {
            write!(writer, "{level}: ")?;
        }
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Writes each formatted line to the console and, once /data is up, the log file.
struct Tee;

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stdout().write_all(buf);
        super::logfile::tee(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stdout().flush()
    }
}

/// Sends `tracing` events to the console. Safe to call once; a second call is a no-op.
pub fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .event_format(ConsoleFormat)
        .with_writer(|| Tee)
        .with_max_level(Level::TRACE)
        .try_init();
}
