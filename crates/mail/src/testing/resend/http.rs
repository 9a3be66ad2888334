//! Just enough HTTP/1.1 for the fake Resend server: one request per
//! connection, read with its `Content-Length` body, one answer, then the
//! connection closes.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use super::request::ResendRequest;

/// The longest request head (request line and headers) read.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The longest request body read.
const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// Why a request could not be read.
#[derive(Debug)]
pub(super) enum ReadError {
    /// The connection failed or closed early.
    Io,
    /// The request is not one the fake understands: answer this status.
    Bad(u16, &'static str),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> ReadError {
        ReadError::Io
    }
}

/// Reads one request.
pub(super) fn read_request(stream: &TcpStream) -> Result<ResendRequest, ReadError> {
    let mut reader = BufReader::new(stream);
    let mut head_bytes = 0;
    let mut line = String::new();
    let mut next_line = |reader: &mut BufReader<&TcpStream>| -> Result<String, ReadError> {
        line.clear();
        let read = reader
            .by_ref()
            .take((MAX_HEAD_BYTES - head_bytes) as u64)
            .read_line(&mut line)?;
        head_bytes += read;
        if read == 0 && head_bytes >= MAX_HEAD_BYTES {
            return Err(ReadError::Bad(431, "request head too large"));
        }
        if read == 0 {
            return Err(ReadError::Io);
        }
        if !line.ends_with('\n') {
            return Err(ReadError::Bad(431, "request head too large"));
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_owned())
    };

    let request_line = next_line(&mut reader)?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(path), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Bad(400, "bad request line"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Bad(505, "HTTP/1.x only"));
    }
    let (method, path) = (method.to_owned(), path.to_owned());

    let mut content_length = 0usize;
    let mut headers = Vec::new();
    loop {
        let header = next_line(&mut reader)?;
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(ReadError::Bad(400, "bad header line"));
        };
        let (name, value) = (name.trim(), value.trim());
        match name.to_ascii_lowercase().as_str() {
            "content-length" => {
                content_length = value
                    .parse()
                    .map_err(|_| ReadError::Bad(400, "bad Content-Length"))?;
            }
            "transfer-encoding" => return Err(ReadError::Bad(411, "Content-Length required")),
            _ => {}
        }
        headers.push((name.to_owned(), value.to_owned()));
    }
    if content_length > MAX_BODY_BYTES {
        return Err(ReadError::Bad(413, "request body too large"));
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body)?;
    Ok(ResendRequest::new(method, path, headers, &body))
}

/// Writes an answer with a JSON body and `Connection: close`.
pub(super) fn write_json(mut stream: &TcpStream, status: u16, body: &str) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        reason(status),
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}
