//! One SMTP conversation of the fake server, on its own thread: the
//! commands it understands and what it records.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::decode::base64_decode;
use super::{ReceivedMail, Shared, POLL};

struct Session<'a> {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    shared: &'a Shared,
}

impl Session<'_> {
    fn reply(&mut self, text: &str) -> io::Result<()> {
        // One write per reply: the line and its break in separate segments
        // would wait out the client's delayed ACK (about 40 ms) each time.
        self.writer.write_all(format!("{text}\r\n").as_bytes())?;
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

pub(super) fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
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
                if !wait_unless_stopped(shared) {
                    return Ok(());
                }
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

/// Waits the server's delay before a message is accepted; `false` when
/// the server stops meanwhile.
fn wait_unless_stopped(shared: &Shared) -> bool {
    if shared.delay.is_zero() {
        return true;
    }
    let deadline = Instant::now() + shared.delay;
    loop {
        if shared.stopping() {
            return false;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(POLL));
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_paths() {
        assert_eq!(path(" <a@b.c> SIZE=12 BODY=8BITMIME"), "a@b.c");
        assert_eq!(path("<>"), "");
        assert_eq!(path("a@b.c"), "a@b.c");
    }
}
