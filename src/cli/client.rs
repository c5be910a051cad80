//! The synchronous client of the control socket: connect, send one request
//! line, read one answer line. No actor system, no config parsing.

use crate::protocol::{encode_line, ControlRequest, ControlResponse};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody listens on the socket.
    #[error("{0}")]
    NoSupervisor(String),
    #[error("control socket: {0}")]
    Io(#[from] io::Error),
    #[error("unreadable answer from the supervisor: {0}")]
    BadAnswer(String),
}

/// How long to wait for an answer: a restart waits for a graceful stop.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(600);

/// Connect to the supervisor; nobody listening is [`ClientError::NoSupervisor`].
pub fn connect(socket: &Path) -> Result<UnixStream, ClientError> {
    match UnixStream::connect(socket) {
        Ok(s) => Ok(s),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
            ) =>
        {
            Err(ClientError::NoSupervisor(format!(
                "{}: {e}",
                socket.display()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

pub fn ask(socket: &Path, request: &ControlRequest) -> Result<ControlResponse, ClientError> {
    let mut stream = connect(socket)?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    stream.write_all(&encode_line(request))?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| ClientError::BadAnswer(e.to_string()))
}
