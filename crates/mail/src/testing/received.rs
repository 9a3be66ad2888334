//! [`ReceivedMail`], one message as the fake server recorded it, and
//! its readers (headers, body, decoded text, the parts of a multipart
//! message).

use super::decode::{base64_decode, decode_encoded_words, quoted_printable_decode};

/// One message the fake server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub from: String,
    /// The envelope recipients (`RCPT TO`), without angle brackets.
    pub recipients: Vec<String>,
    /// Everything sent after `DATA`, dot-unstuffed, with CRLF line ends,
    /// up to and including the line break before the closing `.`.
    pub data: String,
    /// The user name and password given with `AUTH`, if any.
    pub credentials: Option<(String, String)>,
}

impl ReceivedMail {
    /// The header section (without the blank line ending it).
    pub fn headers(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map_or(self.data.as_str(), |(headers, _)| headers)
    }

    /// A header's value, unfolded and trimmed, as sent (RFC 2047 encoded
    /// words left alone); the first one when repeated. The name is matched
    /// case-insensitively.
    pub fn raw_header(&self, name: &str) -> Option<String> {
        header_in(self.headers(), name)
    }

    /// A header's value like [`ReceivedMail::raw_header`], with UTF-8
    /// encoded words (`=?utf-8?b?…?=`, `=?utf-8?q?…?=`) decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        self.raw_header(name)
            .map(|value| decode_encoded_words(&value))
    }

    /// The body as sent (still transfer-encoded), after the blank line.
    pub fn raw_body(&self) -> &str {
        self.data
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
    }

    /// Whether the message is `multipart/…` (e.g. plain text with an HTML
    /// alternative).
    pub fn is_multipart(&self) -> bool {
        self.raw_header("Content-Type")
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/"))
    }

    /// The text that was sent, with `\n` line ends: for a single-part
    /// message its body, decoded by its `Content-Transfer-Encoding` (7bit,
    /// 8bit, quoted-printable or base64) and without the line break that
    /// precedes the closing `.`; for a multipart message its first
    /// `text/plain` part (empty when it has none).
    pub fn text(&self) -> String {
        if self.is_multipart() {
            return self.part("text/plain").unwrap_or_default();
        }
        let body = self.raw_body();
        let body = body.strip_suffix("\r\n").unwrap_or(body);
        decode_body(self.headers(), body)
    }

    /// The first `text/html` part (or the body of a single-part
    /// `text/html` message), decoded.
    pub fn html(&self) -> Option<String> {
        self.part("text/html")
    }

    /// The first part whose `Content-Type` starts with `content_type`
    /// (e.g. `text/html`, case-insensitive), looking into nested multipart
    /// bodies, decoded by its `Content-Transfer-Encoding`, with `\n` line
    /// ends. A single-part message is its own only part (`text/plain`
    /// when it names no type).
    pub fn part(&self, content_type: &str) -> Option<String> {
        let body = self.raw_body();
        let body = body.strip_suffix("\r\n").unwrap_or(body);
        find_part(self.headers(), body, &content_type.to_ascii_lowercase())
    }

    /// The `Content-Type` of every leaf part, in order (the message's own
    /// for a single-part message).
    pub fn part_types(&self) -> Vec<String> {
        let mut types = Vec::new();
        collect_types(self.headers(), self.raw_body(), &mut types);
        types
    }
}

/// A header's value in a header section, unfolded and trimmed.
fn header_in(headers: &str, name: &str) -> Option<String> {
    let mut unfolded: Vec<String> = Vec::new();
    for line in headers.split("\r\n") {
        match unfolded.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => unfolded.push(line.to_owned()),
        }
    }
    unfolded.into_iter().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().to_owned())
    })
}

/// A body decoded by the `Content-Transfer-Encoding` its headers name.
fn decode_body(headers: &str, body: &str) -> String {
    let encoding = header_in(headers, "Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bytes = match encoding.as_str() {
        "quoted-printable" => quoted_printable_decode(body.as_bytes()),
        "base64" => base64_decode(body).unwrap_or_else(|| body.as_bytes().to_vec()),
        _ => body.as_bytes().to_vec(),
    };
    String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
}

/// A `Content-Type` parameter's value, unquoted.
fn parameter(content_type: &str, name: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// The parts of a multipart body, each as (headers, body).
fn split_multipart(body: &str, boundary: &str) -> Vec<(String, String)> {
    // Every delimiter follows a line break, but the first may open the body.
    let framed = format!("\r\n{body}");
    let delimiter = format!("\r\n--{boundary}");
    let mut parts = Vec::new();
    // The first piece is the preamble.
    for piece in framed.split(delimiter.as_str()).skip(1) {
        if piece.starts_with("--") {
            break;
        }
        // The rest of the delimiter line (transport padding), then the part.
        let Some((_, part)) = piece.split_once("\r\n") else {
            continue;
        };
        let (headers, body) = match part.strip_prefix("\r\n") {
            Some(body) => ("", body),
            None => part.split_once("\r\n\r\n").unwrap_or((part, "")),
        };
        parts.push((headers.to_owned(), body.to_owned()));
    }
    parts
}

fn find_part(headers: &str, body: &str, wanted: &str) -> Option<String> {
    let content_type = header_in(headers, "Content-Type").unwrap_or_else(|| "text/plain".into());
    let lower = content_type.to_ascii_lowercase();
    if lower.starts_with("multipart/") {
        let boundary = parameter(&content_type, "boundary")?;
        split_multipart(body, &boundary)
            .into_iter()
            .find_map(|(headers, body)| find_part(&headers, &body, wanted))
    } else if lower.starts_with(wanted) {
        Some(decode_body(headers, body))
    } else {
        None
    }
}

fn collect_types(headers: &str, body: &str, types: &mut Vec<String>) {
    let content_type = header_in(headers, "Content-Type").unwrap_or_else(|| "text/plain".into());
    if content_type.to_ascii_lowercase().starts_with("multipart/") {
        if let Some(boundary) = parameter(&content_type, "boundary") {
            for (headers, body) in split_multipart(body, &boundary) {
                collect_types(&headers, &body, types);
            }
        }
    } else {
        types.push(content_type);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_unfolded() {
        let mail = ReceivedMail {
            from: String::new(),
            recipients: Vec::new(),
            data: "Subject: =?utf-8?b?w6k=?=\r\n =?utf-8?b?w6k=?=\r\nTo: a@b.c\r\n\r\nhi\r\n"
                .to_owned(),
            credentials: None,
        };
        assert_eq!(mail.header("subject").as_deref(), Some("éé"));
        assert_eq!(mail.raw_header("TO").as_deref(), Some("a@b.c"));
        assert_eq!(mail.header("Cc"), None);
        assert_eq!(mail.text(), "hi");
        assert_eq!(mail.part("text/plain").as_deref(), Some("hi"));
        assert_eq!(mail.html(), None);
        assert!(!mail.is_multipart());
    }

    #[test]
    fn multipart_parts_are_decoded() {
        let mail = ReceivedMail {
            from: String::new(),
            recipients: Vec::new(),
            data: "Content-Type: multipart/alternative;\r\n boundary=\"b1\"\r\n\r\n\
                   preamble\r\n--b1\r\n\
                   Content-Type: text/plain; charset=utf-8\r\n\
                   Content-Transfer-Encoding: quoted-printable\r\n\r\n\
                   caf=C3=A9\r\n\
                   --b1 \r\n\
                   Content-Type: text/html; charset=utf-8\r\n\
                   Content-Transfer-Encoding: base64\r\n\r\n\
                   PHA+aGk8L3A+\r\n\
                   --b1--\r\n"
                .to_owned(),
            credentials: None,
        };
        assert!(mail.is_multipart());
        assert_eq!(mail.text(), "café");
        assert_eq!(mail.html().as_deref(), Some("<p>hi</p>"));
        assert_eq!(
            mail.part_types(),
            vec![
                "text/plain; charset=utf-8".to_owned(),
                "text/html; charset=utf-8".to_owned()
            ]
        );
        assert_eq!(mail.part("image/png"), None);
    }
}
