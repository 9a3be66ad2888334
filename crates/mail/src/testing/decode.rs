//! The decoders the fake server needs: base64 (`AUTH`), quoted-printable
//! (bodies) and RFC 2047 encoded words (headers).

/// Decodes standard base64 (whitespace ignored, padding optional).
pub(super) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let symbols: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let symbols = symbols
        .strip_suffix(b"==")
        .or_else(|| symbols.strip_suffix(b"="))
        .unwrap_or(&symbols);
    let mut out = Vec::with_capacity(symbols.len() * 3 / 4);
    for chunk in symbols.chunks(4) {
        let mut bits = 0u32;
        for &c in chunk {
            bits = (bits << 6) | value(c)?;
        }
        let bytes = match chunk.len() {
            4 => 3,
            3 => 2,
            2 => 1,
            _ => return None,
        };
        bits <<= 6 * (4 - chunk.len() as u32);
        out.extend_from_slice(&bits.to_be_bytes()[1..=bytes]);
    }
    Some(out)
}

/// Decodes quoted-printable: `=XX` escapes and `=` soft line breaks.
pub(super) fn quoted_printable_decode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'=' {
            if text[i + 1..].starts_with(b"\r\n") {
                i += 3;
                continue;
            }
            if text[i + 1..].starts_with(b"\n") {
                i += 2;
                continue;
            }
            if let Some(byte) = hex_byte(text.get(i + 1..i + 3)) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

fn hex_byte(hex: Option<&[u8]>) -> Option<u8> {
    u8::from_str_radix(std::str::from_utf8(hex?).ok()?, 16).ok()
}

/// Decodes RFC 2047 encoded words in UTF-8 (or US-ASCII); whitespace
/// between adjacent encoded words is dropped, as the RFC says.
pub(super) fn decode_encoded_words(value: &str) -> String {
    let mut out = String::new();
    let mut run: Vec<u8> = Vec::new();
    let mut in_run = false;
    let mut rest = value;
    while !rest.is_empty() {
        let space_len = rest.len() - rest.trim_start().len();
        let (space, after) = rest.split_at(space_len);
        let token_len = after.find(char::is_whitespace).unwrap_or(after.len());
        let (token, after) = after.split_at(token_len);
        rest = after;
        match decode_encoded_word(token) {
            Some(bytes) => {
                if !in_run {
                    out.push_str(space);
                }
                run.extend_from_slice(&bytes);
                in_run = true;
            }
            None => {
                out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut run)));
                in_run = false;
                out.push_str(space);
                out.push_str(token);
            }
        }
    }
    out.push_str(&String::from_utf8_lossy(&run));
    out
}

fn decode_encoded_word(token: &str) -> Option<Vec<u8>> {
    let inner = token.strip_prefix("=?")?.strip_suffix("?=")?;
    let mut parts = inner.splitn(3, '?');
    let (charset, encoding, text) = (parts.next()?, parts.next()?, parts.next()?);
    let charset = charset.split('*').next().unwrap_or_default();
    if !charset.eq_ignore_ascii_case("utf-8") && !charset.eq_ignore_ascii_case("us-ascii") {
        return None;
    }
    match encoding {
        "b" | "B" => base64_decode(text),
        "q" | "Q" => Some(quoted_printable_decode(text.replace('_', " ").as_bytes())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(
            base64_decode("AHVzZXIAcGFzcw==").as_deref(),
            Some(&b"\0user\0pass"[..])
        );
        assert_eq!(base64_decode("aGk=").as_deref(), Some(&b"hi"[..]));
        assert_eq!(base64_decode("aGkh").as_deref(), Some(&b"hi!"[..]));
        assert_eq!(base64_decode("aG\r\nkh").as_deref(), Some(&b"hi!"[..]));
        assert_eq!(base64_decode("").as_deref(), Some(&b""[..]));
        assert_eq!(base64_decode("a"), None);
        assert_eq!(base64_decode("a*bc"), None);
    }

    #[test]
    fn quoted_printable() {
        assert_eq!(
            quoted_printable_decode(b"caf=C3=A9 =\r\nau lait=3D=\n!="),
            "café au lait=!=".as_bytes()
        );
    }

    #[test]
    fn encoded_words() {
        assert_eq!(decode_encoded_words("plain text"), "plain text");
        assert_eq!(
            decode_encoded_words("=?utf-8?b?Y2Fmw6k=?= =?utf-8?q?_au_lait?= ok"),
            "café au lait ok"
        );
        // A character split across two words.
        assert_eq!(
            decode_encoded_words("=?utf-8?b?Y2Fmww==?=\t=?utf-8?b?qQ==?="),
            "café"
        );
        assert_eq!(
            decode_encoded_words("=?iso-8859-1?q?x?="),
            "=?iso-8859-1?q?x?="
        );
    }
}
