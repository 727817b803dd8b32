//! Tracing in the walkthrough's format, silent unless asked for.
//!
//! `[2026-03-13T07:02:50.443Z] [Correlation: abc123] Serialized payload 'msg' (type: text) size: 11 bytes`
//!
//! Enabled by the environment variable `NATSBRIDGE_LOG` (`1`, `true`, `debug`, `info` or `warn`)
//! or by [`set_level`]. Lines go to standard error, or to a sink installed with [`set_sink`]
//! (the C ABI uses it to hand lines to the host).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Once, RwLock};

/// How much to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Nothing (the default).
    Off = 0,
    /// Warnings only (upload fallbacks, dropped messages).
    Warn = 1,
    /// Every step of sending and receiving.
    Info = 2,
    /// Everything, including retries.
    Debug = 3,
}

static LEVEL: AtomicU8 = AtomicU8::new(0);
static FROM_ENV: Once = Once::new();

type SinkFn = Box<dyn Fn(Level, &str) + Send + Sync>;
static SINK: RwLock<Option<SinkFn>> = RwLock::new(None);

fn init_from_env() {
    FROM_ENV.call_once(|| {
        if let Ok(v) = std::env::var("NATSBRIDGE_LOG") {
            let level = match v.trim().to_ascii_lowercase().as_str() {
                "" | "0" | "off" | "false" | "no" => Level::Off,
                "warn" | "warning" => Level::Warn,
                "debug" | "trace" => Level::Debug,
                _ => Level::Info,
            };
            // An explicit set_level before first use wins over the environment.
            let _ = LEVEL.compare_exchange(0, level as u8, Ordering::Relaxed, Ordering::Relaxed);
        }
    });
}

/// Sets the level (overrides `NATSBRIDGE_LOG`).
pub fn set_level(level: Level) {
    FROM_ENV.call_once(|| {});
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// The current level.
pub fn level() -> Level {
    init_from_env();
    match LEVEL.load(Ordering::Relaxed) {
        0 => Level::Off,
        1 => Level::Warn,
        2 => Level::Info,
        _ => Level::Debug,
    }
}

/// Sends log lines to `sink` instead of standard error (`None` restores standard error).
pub fn set_sink(sink: Option<SinkFn>) {
    *SINK.write().unwrap_or_else(|e| e.into_inner()) = sink;
}

/// Whether a line at `level` would be written.
pub fn enabled(level: Level) -> bool {
    level != Level::Off && level <= self::level()
}

/// Writes one line, if enabled. Use the `trace!` macro rather than calling this directly.
pub fn write(level: Level, correlation_id: &str, message: std::fmt::Arguments<'_>) {
    if !enabled(level) {
        return;
    }
    let line = format!(
        "[{}] [Correlation: {}] {}",
        crate::time::now_iso8601(),
        correlation_id,
        message
    );
    let sink = SINK.read().unwrap_or_else(|e| e.into_inner());
    match sink.as_ref() {
        Some(f) => f(level, &line),
        None => eprintln!("{line}"),
    }
}

/// `trace!(Level::Info, correlation_id, "format {}", args)`.
macro_rules! trace {
    ($level:expr, $cid:expr, $($arg:tt)+) => {
        if $crate::log::enabled($level) {
            $crate::log::write($level, $cid, format_args!($($arg)+));
        }
    };
}
pub(crate) use trace;
