//! A small subset of Go's `http.DetectContentType`, which Plik applies to the first bytes
//! of every upload, plus the download-side neutralisation of types a browser would run.

/// How many leading bytes the sniffer looks at (as Go does).
pub(crate) const SNIFF_LEN: usize = 512;

/// MIME type guessed from the first bytes of a file.
pub(crate) fn detect_content_type(data: &[u8]) -> &'static str {
    let data = &data[..data.len().min(SNIFF_LEN)];
    const MAGIC: &[(&[u8], &str)] = &[
        (b"%PDF-", "application/pdf"),
        (b"%!PS-Adobe-", "application/postscript"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"\x89PNG\x0D\x0A\x1A\x0A", "image/png"),
        (b"\xFF\xD8\xFF", "image/jpeg"),
        (b"BM", "image/bmp"),
        (b"\x00\x00\x01\x00", "image/x-icon"),
        (b"OggS\x00", "application/ogg"),
        (b"ID3", "audio/mpeg"),
        (b"PK\x03\x04", "application/zip"),
        (b"\x1F\x8B\x08", "application/x-gzip"),
        (b"Rar!\x1A\x07", "application/x-rar-compressed"),
        (b"7z\xBC\xAF\x27\x1C", "application/x-7z-compressed"),
        (b"\x00asm", "application/wasm"),
        (b"\xEF\xBB\xBF", "text/plain; charset=utf-8"),
    ];
    if let Some((_, mime)) = MAGIC.iter().find(|(magic, _)| data.starts_with(magic)) {
        return mime;
    }
    if data.len() >= 14 && data.starts_with(b"RIFF") && &data[8..14] == b"WEBPVP" {
        return "image/webp";
    }
    let text = trim_leading_whitespace(data);
    if is_html(text) {
        return "text/html; charset=utf-8";
    }
    if text.starts_with(b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    if data.iter().any(|&b| is_binary_byte(b)) {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    }
}

/// The `Content-Type` of a download: anything a browser could execute, and anything
/// unknown, is served as opaque bytes (what current Plik does).
pub(crate) fn safe_download_type(stored: &str) -> &str {
    const UNSAFE: [&str; 6] = ["html", "svg", "xml", "javascript", "flash", "pdf"];
    let lower = stored.to_ascii_lowercase();
    if stored.is_empty() || UNSAFE.iter().any(|u| lower.contains(u)) {
        "application/octet-stream"
    } else {
        stored
    }
}

fn trim_leading_whitespace(data: &[u8]) -> &[u8] {
    let start = data
        .iter()
        .position(|b| !matches!(b, b'\t' | b'\n' | b'\x0C' | b'\r' | b' '))
        .unwrap_or(data.len());
    &data[start..]
}

fn is_html(text: &[u8]) -> bool {
    const TAGS: [&[u8]; 17] = [
        b"<!DOCTYPE HTML",
        b"<HTML",
        b"<HEAD",
        b"<SCRIPT",
        b"<IFRAME",
        b"<H1",
        b"<DIV",
        b"<FONT",
        b"<TABLE",
        b"<A",
        b"<STYLE",
        b"<TITLE",
        b"<B",
        b"<BODY",
        b"<BR",
        b"<P",
        b"<!--",
    ];
    TAGS.iter().any(|tag| {
        text.len() > tag.len()
            && text[..tag.len()].eq_ignore_ascii_case(tag)
            && matches!(text[tag.len()], b' ' | b'>')
    })
}

/// Go's "binary data byte" set.
fn is_binary_byte(b: u8) -> bool {
    matches!(b, 0x00..=0x08 | 0x0B | 0x0E..=0x1A | 0x1C..=0x1F)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_common_types() {
        assert_eq!(
            detect_content_type(b"hello world\n"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(detect_content_type(b""), "text/plain; charset=utf-8");
        assert_eq!(
            detect_content_type(b"\x00\x01\x02"),
            "application/octet-stream"
        );
        assert_eq!(detect_content_type(b"\x89PNG\r\n\x1a\nxxxx"), "image/png");
        assert_eq!(
            detect_content_type(b"  <html><body>"),
            "text/html; charset=utf-8"
        );
        assert_eq!(detect_content_type(b"%PDF-1.7"), "application/pdf");
    }

    #[test]
    fn download_type_is_never_executable() {
        assert_eq!(
            safe_download_type("text/html; charset=utf-8"),
            "application/octet-stream"
        );
        assert_eq!(
            safe_download_type("image/svg+xml"),
            "application/octet-stream"
        );
        assert_eq!(
            safe_download_type("application/pdf"),
            "application/octet-stream"
        );
        assert_eq!(safe_download_type(""), "application/octet-stream");
        assert_eq!(safe_download_type("image/png"), "image/png");
    }
}
