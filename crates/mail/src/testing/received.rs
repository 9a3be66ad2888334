//! [`ReceivedMail`], one message as the fake server recorded it, and
//! its readers (headers, body, decoded text).

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
        let mut unfolded: Vec<String> = Vec::new();
        for line in self.headers().split("\r\n") {
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

    /// The body decoded by its `Content-Transfer-Encoding` (7bit, 8bit,
    /// quoted-printable or base64), with `\n` line ends and without the
    /// line break that precedes the closing `.`: the text that was sent.
    pub fn text(&self) -> String {
        let body = self.raw_body();
        let body = body.strip_suffix("\r\n").unwrap_or(body);
        let encoding = self
            .raw_header("Content-Transfer-Encoding")
            .unwrap_or_default()
            .to_ascii_lowercase();
        let bytes = match encoding.as_str() {
            "quoted-printable" => quoted_printable_decode(body.as_bytes()),
            "base64" => base64_decode(body).unwrap_or_else(|| body.as_bytes().to_vec()),
            _ => body.as_bytes().to_vec(),
        };
        String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
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
    }
}
