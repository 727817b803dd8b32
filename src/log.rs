//! Tracing in the walkthrough's format, silent unless asked for.
//!
//! `[2026-03-13T07:02:50.443Z] [Correlation: abc123] Serialized payload 'msg' (type: text) size: 11 bytes`
//!
//! Enabled by the environment variable `NATSBRIDGE_LOG` (`1`, `true`, `debug`, `info` or `warn`)
//! or by [`set_level`]. Lines go to standard error, or to a sink installed with [`set_sink`]
//! (the C ABI uses it to hand lines to the host). Text from the network in a line (ids,
//! names, subjects, URLs) goes through [`printable`]: a line never carries a control
//! character or a bidirectional override, and is always one line.

use std::borrow::Cow;
use std::fmt::Write as _;
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
    let line = printable(&line);
    let sink = SINK.read().unwrap_or_else(|e| e.into_inner());
    match sink.as_ref() {
        Some(f) => f(level, &line),
        None => eprintln!("{line}"),
    }
}

/// Whether `c` is written as an escape by [`printable`].
fn needs_escape(c: char) -> bool {
    matches!(c,
        '\0'..='\x1f' | '\x7f'..='\u{9f}' // C0 controls, DEL, C1 controls
        | '\u{61c}' | '\u{200e}' | '\u{200f}' // bidirectional marks
        | '\u{2028}'..='\u{202e}' // line and paragraph separators, bidirectional embeddings and overrides
        | '\u{2066}'..='\u{2069}') // bidirectional isolates
}

/// `text` made safe to show on a terminal: every character that could drive the terminal
/// (escape sequences, bells), break the line or reorder what is shown is written as an
/// escape. C0 controls and DEL become `\xNN` (tab, line feed and carriage return `\t`, `\n`,
/// `\r`); C1 controls, bidirectional marks, embeddings, overrides and isolates (U+061C,
/// U+200E, U+200F, U+202A–U+202E, U+2066–U+2069) and U+2028/U+2029 become `\u{NNNN}`.
/// Everything else, backslashes included, is kept; text with nothing to escape is borrowed.
///
/// For output meant for people (log lines, the command line's readable output); JSON output
/// needs no such treatment.
pub fn printable(text: &str) -> Cow<'_, str> {
    let Some(first) = text.find(needs_escape) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 16);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) && c.is_ascii() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_what_drives_a_terminal() {
        assert!(matches!(printable("plain é ✓ \\x"), Cow::Borrowed(_)));
        assert_eq!(
            printable("a\u{1b}[31m\u{7}\t\n\r\0\u{7f}"),
            r"a\x1b[31m\x07\t\n\r\x00\x7f"
        );
        assert_eq!(
            printable("é\u{85}\u{9b}\u{202e}\u{2066}\u{200f}\u{2028}z"),
            r"é\u{85}\u{9b}\u{202e}\u{2066}\u{200f}\u{2028}z"
        );
        for c in (0..=0x10ffff).filter_map(char::from_u32) {
            let shown = printable(c.encode_utf8(&mut [0; 4])).into_owned();
            assert!(!shown.chars().any(needs_escape), "{c:?} shown as {shown:?}");
            assert_eq!(shown.chars().count() > 1, needs_escape(c), "{c:?}");
        }
    }
}
