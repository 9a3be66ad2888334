//! Test support: [`FakeSmtpServer`], a tiny SMTP server (std only) that
//! records what it is sent, for this crate's tests and for end-to-end tests
//! of the whole server.
//!
//! ```
//! use chatdesk_mail::testing::FakeSmtpServer;
//! use std::time::Duration;
//!
//! let server = FakeSmtpServer::start();
//! let url = server.url(); // smtp://127.0.0.1:PORT, for SMTP_URL
//! // … send something through `url` …
//! let mails = server.wait_for(0, Duration::from_secs(5));
//! assert!(mails.is_empty());
//! ```

use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How often idle threads check whether the server is stopping.
const POLL: Duration = Duration::from_millis(50);

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

/// A tiny SMTP server on `127.0.0.1` (a free port) serving each connection
/// in a background thread. It speaks just enough SMTP for lettre: greeting,
/// `EHLO`/`HELO`, `AUTH PLAIN`/`LOGIN` (any credentials are accepted and
/// recorded), `MAIL FROM`, `RCPT TO`, `DATA`, `RSET`, `NOOP`, `QUIT`; no
/// TLS (`STARTTLS` is refused).
///
/// It stops, and its threads end, when dropped.
pub struct FakeSmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    /// The answer to every `RCPT TO`, when not `250`.
    refuse_recipients: Option<&'static str>,
    stop: AtomicBool,
    connections: AtomicUsize,
    mails: Mutex<Vec<ReceivedMail>>,
    arrived: Condvar,
}

impl Shared {
    fn mails(&self) -> MutexGuard<'_, Vec<ReceivedMail>> {
        self.mails.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

impl FakeSmtpServer {
    /// Starts a server that accepts every message.
    ///
    /// # Panics
    /// When no local port can be bound (test support only).
    pub fn start() -> FakeSmtpServer {
        FakeSmtpServer::start_with(None)
    }

    /// Starts a server that answers every `RCPT TO` with
    /// `550 5.1.1 <address>: Recipient address rejected: User unknown`.
    ///
    /// # Panics
    /// When no local port can be bound (test support only).
    pub fn start_rejecting_recipients() -> FakeSmtpServer {
        FakeSmtpServer::start_with(Some("550 5.1.1 Recipient address rejected: User unknown"))
    }

    /// Starts a server that answers every `RCPT TO` with the temporary
    /// failure `450 4.2.1 <address>: Mailbox temporarily unavailable`.
    ///
    /// # Panics
    /// When no local port can be bound (test support only).
    pub fn start_deferring_recipients() -> FakeSmtpServer {
        FakeSmtpServer::start_with(Some("450 4.2.1 Mailbox temporarily unavailable"))
    }

    fn start_with(refuse_recipients: Option<&'static str>) -> FakeSmtpServer {
        let listener =
            TcpListener::bind("127.0.0.1:0").expect("fake SMTP server: bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("fake SMTP server: local address");
        listener
            .set_nonblocking(true)
            .expect("fake SMTP server: non-blocking listener");
        let shared = Arc::new(Shared {
            refuse_recipients,
            ..Shared::default()
        });
        let acceptor = thread::Builder::new()
            .name(format!("fake-smtp-{}", addr.port()))
            .spawn({
                let shared = Arc::clone(&shared);
                move || accept_loop(&listener, &shared)
            })
            .expect("fake SMTP server: spawn thread");
        FakeSmtpServer {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `smtp://127.0.0.1:PORT`, for `SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// The messages accepted so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.shared.mails().clone()
    }

    /// Waits until at least `count` messages have arrived or `timeout` has
    /// passed, then returns all the messages accepted (possibly fewer).
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        let mut mails = self.shared.mails();
        while mails.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            mails = self
                .shared
                .arrived
                .wait_timeout(mails, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        mails.clone()
    }

    /// How many connections it has accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl fmt::Debug for FakeSmtpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeSmtpServer")
            .field("addr", &self.addr)
            .field("refuse_recipients", &self.shared.refuse_recipients)
            .field("messages", &self.shared.mails().len())
            .finish()
    }
}

impl Drop for FakeSmtpServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let mut sessions: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stopping() {
        match listener.accept() {
            Ok((stream, _)) => {
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(shared);
                let spawned = thread::Builder::new()
                    .name("fake-smtp-session".to_owned())
                    .spawn(move || {
                        let _ = serve(stream, &shared);
                    });
                if let Ok(handle) = spawned {
                    sessions.push(handle);
                }
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
        sessions.retain(|handle| !handle.is_finished());
    }
    for session in sessions {
        let _ = session.join();
    }
}

struct Session<'a> {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    shared: &'a Shared,
}

impl Session<'_> {
    fn reply(&mut self, text: &str) -> io::Result<()> {
        self.writer.write_all(text.as_bytes())?;
        self.writer.write_all(b"\r\n")?;
        self.writer.flush()
    }

    /// The next line with its line break; `None` at end of stream or when
    /// the server stops.
    fn read_raw_line(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        loop {
            match self.reader.read_until(b'\n', &mut line) {
                Ok(_) if line.ends_with(b"\n") => return Ok(Some(line)),
                Ok(_) => return Ok(None),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    if self.shared.stopping() {
                        return Ok(None);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The next line without its line break.
    fn read_line(&mut self) -> io::Result<Option<String>> {
        Ok(self.read_raw_line()?.map(|line| {
            String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\n'])
                .to_owned()
        }))
    }

    /// The message after `DATA`, dot-unstuffed; `None` if the client left.
    fn read_data(&mut self) -> io::Result<Option<String>> {
        let mut data = Vec::new();
        loop {
            let Some(line) = self.read_raw_line()? else {
                return Ok(None);
            };
            if line == b".\r\n" || line == b".\n" {
                return Ok(Some(String::from_utf8_lossy(&data).into_owned()));
            }
            let line = line.strip_prefix(b".").unwrap_or(&line);
            data.extend_from_slice(line);
        }
    }

    /// Runs an `AUTH` exchange; the credentials, or `None` if the client
    /// left.
    fn auth(&mut self, args: &str) -> io::Result<Option<Result<(String, String), ()>>> {
        let mut args = args.split_whitespace();
        let mechanism = args.next().unwrap_or_default().to_ascii_uppercase();
        let initial = args.next().map(str::to_owned);
        match mechanism.as_str() {
            "PLAIN" => {
                let encoded = match initial {
                    Some(initial) if initial != "=" => initial,
                    _ => {
                        self.reply("334 ")?;
                        let Some(line) = self.read_line()? else {
                            return Ok(None);
                        };
                        line
                    }
                };
                let decoded =
                    base64_decode(&encoded).map(|b| String::from_utf8_lossy(&b).into_owned());
                let credentials = decoded.and_then(|text| {
                    let mut parts = text.split('\0');
                    let (_authzid, user, password) = (parts.next()?, parts.next()?, parts.next()?);
                    Some((user.to_owned(), password.to_owned()))
                });
                Ok(Some(credentials.ok_or(())))
            }
            "LOGIN" => {
                let user = match initial {
                    Some(initial) => initial,
                    None => {
                        self.reply("334 VXNlcm5hbWU6")?;
                        let Some(line) = self.read_line()? else {
                            return Ok(None);
                        };
                        line
                    }
                };
                self.reply("334 UGFzc3dvcmQ6")?;
                let Some(password) = self.read_line()? else {
                    return Ok(None);
                };
                let decode = |text: &str| {
                    base64_decode(text).map(|b| String::from_utf8_lossy(&b).into_owned())
                };
                Ok(Some(match (decode(&user), decode(&password)) {
                    (Some(user), Some(password)) => Ok((user, password)),
                    _ => Err(()),
                }))
            }
            _ => Ok(Some(Err(()))),
        }
    }
}

fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let writer = stream.try_clone()?;
    let mut session = Session {
        reader: BufReader::new(stream),
        writer,
        shared,
    };
    session.reply("220 fake-smtp ESMTP ready")?;
    let mut from: Option<String> = None;
    let mut recipients: Vec<String> = Vec::new();
    let mut credentials: Option<(String, String)> = None;
    while let Some(line) = session.read_line()? {
        let upper = line.to_ascii_uppercase();
        let verb = upper.split_whitespace().next().unwrap_or_default();
        match verb {
            "EHLO" => session.reply(
                "250-fake-smtp\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 AUTH PLAIN LOGIN",
            )?,
            "HELO" => session.reply("250 fake-smtp")?,
            "AUTH" => match session.auth(&line[4..])? {
                None => return Ok(()),
                Some(Ok(given)) => {
                    credentials = Some(given);
                    session.reply("235 2.7.0 Authentication successful")?;
                }
                Some(Err(())) => session.reply("501 5.5.4 Malformed or unsupported AUTH")?,
            },
            "MAIL" if upper.starts_with("MAIL FROM:") => {
                from = Some(path(&line["MAIL FROM:".len()..]));
                recipients.clear();
                session.reply("250 2.1.0 Ok")?;
            }
            "RCPT" if upper.starts_with("RCPT TO:") => {
                let recipient = path(&line["RCPT TO:".len()..]);
                if from.is_none() {
                    session.reply("503 5.5.1 Error: need MAIL command")?;
                } else if let Some(refusal) = shared.refuse_recipients {
                    let (code, reason) = refusal.split_at(10);
                    session.reply(&format!("{code}<{recipient}>: {reason}"))?;
                } else {
                    recipients.push(recipient);
                    session.reply("250 2.1.5 Ok")?;
                }
            }
            "DATA" => {
                let Some(sender) = from.clone().filter(|_| !recipients.is_empty()) else {
                    session.reply("503 5.5.1 Error: no valid recipients")?;
                    continue;
                };
                session.reply("354 End data with <CR><LF>.<CR><LF>")?;
                let Some(data) = session.read_data()? else {
                    return Ok(());
                };
                let queued = {
                    let mut mails = shared.mails();
                    mails.push(ReceivedMail {
                        from: sender,
                        recipients: std::mem::take(&mut recipients),
                        data,
                        credentials: credentials.clone(),
                    });
                    mails.len()
                };
                shared.arrived.notify_all();
                from = None;
                session.reply(&format!("250 2.0.0 Ok: queued as {queued}"))?;
            }
            "RSET" => {
                from = None;
                recipients.clear();
                session.reply("250 2.0.0 Ok")?;
            }
            "NOOP" => session.reply("250 2.0.0 Ok")?,
            "QUIT" => {
                session.reply("221 2.0.0 Bye")?;
                return Ok(());
            }
            "STARTTLS" => session.reply("454 4.7.0 TLS not available")?,
            _ => session.reply("502 5.5.2 Error: command not recognized")?,
        }
    }
    Ok(())
}

/// The address of a `MAIL FROM:`/`RCPT TO:` argument: `<a@b> SIZE=1` →
/// `a@b`.
fn path(argument: &str) -> String {
    let argument = argument.trim();
    match argument.strip_prefix('<') {
        Some(rest) => rest.split('>').next().unwrap_or_default().to_owned(),
        None => argument
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// Decodes standard base64 (whitespace ignored, padding optional).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
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
fn quoted_printable_decode(text: &[u8]) -> Vec<u8> {
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
fn decode_encoded_words(value: &str) -> String {
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

    #[test]
    fn envelope_paths() {
        assert_eq!(path(" <a@b.c> SIZE=12 BODY=8BITMIME"), "a@b.c");
        assert_eq!(path("<>"), "");
        assert_eq!(path("a@b.c"), "a@b.c");
    }

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
