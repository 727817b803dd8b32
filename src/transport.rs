//! Transport selection: the one place that decides direct or link (wire format §4).

use crate::envelope::{Envelope, Transport};
use crate::error::{Error, ErrorCode, Result};

/// Direct below the threshold, link at or above it.
pub fn select(size: usize, threshold: usize) -> Transport {
    if size < threshold {
        Transport::Direct
    } else {
        Transport::Link
    }
}

/// A URL of the length a link will have once uploaded, to measure the envelope before uploading.
/// Plik ids are 16 characters; this allows 32 each so the estimate errs on the large side.
pub(crate) fn placeholder_url(base: &str, dataname: &str) -> String {
    let encoded =
        percent_encoding::utf8_percent_encode(dataname, percent_encoding::NON_ALPHANUMERIC)
            .to_string()
            .len();
    format!(
        "{base}/file/{}/{}/{}",
        "u".repeat(32),
        "f".repeat(32),
        "n".repeat(encoded)
    )
}

/// Makes the envelope fit the server's `max_payload`: while it is too large, the largest direct
/// payload moves to link (if `link_base` names a file server). Fails with `PAYLOAD_TOO_LARGE`
/// when it cannot fit, before anything is uploaded or published.
pub(crate) fn fit_max_payload(
    env: &mut Envelope,
    max_payload: usize,
    link_base: Option<&str>,
) -> Result<()> {
    loop {
        let len = env.json_len();
        if len <= max_payload {
            return Ok(());
        }
        let largest = env
            .payloads
            .iter_mut()
            .filter(|p| p.transport == Transport::Direct)
            .max_by_key(|p| p.size);
        match (largest, link_base) {
            (Some(p), Some(base)) => {
                p.transport = Transport::Link;
                p.encoding = Transport::Link.encoding().into();
                p.url = Some(placeholder_url(base, &p.dataname));
            }
            (largest, _) => {
                let why = if largest.is_some() {
                    "no file server is configured for link transport"
                } else {
                    "every payload already goes by link; the envelope itself is too large"
                };
                return Err(Error::new(
                    ErrorCode::PayloadTooLarge,
                    format!(
                        "envelope of {len} bytes exceeds the server's max_payload of {max_payload} bytes: {why}"
                    ),
                )
                .with_detail("envelope_bytes", len)
                .with_detail("max_payload", max_payload));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_boundary() {
        assert_eq!(select(499_999, 500_000), Transport::Direct);
        assert_eq!(select(500_000, 500_000), Transport::Link);
        assert_eq!(select(0, 1), Transport::Direct);
    }
}
