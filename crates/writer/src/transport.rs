//! How frames travel with the files that go beside them.
//!
//! A job's image is opened by the front end, with the user's rights, and the open
//! file goes to the worker with the job's frame: the worker never opens a path the
//! user gave, so it reads only what the user may read. Each stream carries the file
//! its own way:
//!
//! - a Unix socket (the worker's standard input on Linux): the descriptor rides with
//!   the frame's first byte, sent on its own (`SCM_RIGHTS`), by
//!   [`graver_drives::send_with_file`] and [`graver_drives::receive_with_files`];
//! - a Windows pipe: an [`ATTACH`] marker and the front end's handle value come just
//!   before the frame, and the worker duplicates the handle out of the front end's
//!   process (see [`Receive::adopter`]);
//! - a worker on a thread of the front end: the `File` itself, over a channel ([`channel`]).

use std::fs::File;
use std::io::{self, Read, Write};

use crossbeam_channel::{Receiver, Sender};

/// The length prefix that is not a frame's length (it is over [`MAX_FRAME`](crate::protocol::MAX_FRAME)):
/// on a stream that carries handle values (Windows), it is followed by 8 bytes, the
/// little-endian value of a handle in the front end's process that goes with the next frame.
pub const ATTACH: u32 = u32::MAX;

/// Makes a file of a handle value in the front end's process (Windows: `DuplicateHandle`).
pub type Adopter = Box<dyn Fn(u64) -> io::Result<File> + Send>;

/// The worker's side of the stream from the front end.
pub trait Receive: Send {
    /// Reads some bytes into `buf` (0 at the end of the stream); files that came with
    /// them are pushed onto `files`, each with the index in `buf` of a byte of the frame
    /// it belongs to. (A Unix socket ends a read right after the byte a descriptor came
    /// with, the first byte of its frame, sent alone: there it is the last byte read.)
    ///
    /// # Errors
    /// As the stream's reads.
    fn receive(&mut self, buf: &mut [u8], files: &mut Vec<(usize, File)>) -> io::Result<usize>;

    /// For a stream that carries handle values after an [`ATTACH`] marker, what turns
    /// one into a file; `None` (the default) where the marker is garbage.
    fn adopter(&self) -> Option<Adopter> {
        None
    }
}

impl<R: Receive + ?Sized> Receive for Box<R> {
    fn receive(&mut self, buf: &mut [u8], files: &mut Vec<(usize, File)>) -> io::Result<usize> {
        (**self).receive(buf, files)
    }

    fn adopter(&self) -> Option<Adopter> {
        (**self).adopter()
    }
}

/// The front end's side of the stream to the worker.
pub trait Deliver: Send {
    /// Sends `frame` (a whole frame, length prefix included) and, when given, `file` with it.
    ///
    /// # Errors
    /// When the worker has gone, or this stream cannot carry a file.
    fn deliver(&mut self, frame: &[u8], file: Option<&File>) -> io::Result<()>;
}

impl<D: Deliver + ?Sized> Deliver for Box<D> {
    fn deliver(&mut self, frame: &[u8], file: Option<&File>) -> io::Result<()> {
        (**self).deliver(frame, file)
    }
}

/// A byte stream that carries no files: a job sent over it is refused by the worker.
pub struct Plain<T>(pub T);

impl<R: Read + Send> Receive for Plain<R> {
    fn receive(&mut self, buf: &mut [u8], _files: &mut Vec<(usize, File)>) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl<W: Write + Send> Deliver for Plain<W> {
    fn deliver(&mut self, frame: &[u8], file: Option<&File>) -> io::Result<()> {
        if file.is_some() {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this stream cannot carry the image file to the writer",
            ));
        }
        self.0.write_all(frame)?;
        self.0.flush()
    }
}

/// A Windows pipe to the worker: a file goes as an [`ATTACH`] marker with the value of
/// its handle in this process, just before its frame; the worker duplicates it from here.
#[cfg(windows)]
pub struct Handles<W>(pub W);

#[cfg(windows)]
impl<W: Write + Send> Deliver for Handles<W> {
    fn deliver(&mut self, frame: &[u8], file: Option<&File>) -> io::Result<()> {
        use std::os::windows::io::AsRawHandle;

        let mut bytes = Vec::with_capacity(12 + frame.len());
        if let Some(file) = file {
            bytes.extend_from_slice(&ATTACH.to_le_bytes());
            bytes.extend_from_slice(&(file.as_raw_handle() as usize as u64).to_le_bytes());
        }
        bytes.extend_from_slice(frame);
        self.0.write_all(&bytes)?;
        self.0.flush()
    }
}

/// What one [`channel`] message holds: bytes, and the file that goes with their first byte.
type Message = (Vec<u8>, Option<File>);

/// The front end's half of a [`channel`].
pub struct ChannelSender(Sender<Message>);

/// The worker's half of a [`channel`].
pub struct ChannelReceiver {
    messages: Receiver<Message>,
    /// What did not fit the last `receive`'s buffer.
    rest: Vec<u8>,
}

/// A stream between a front end and a worker on one of its threads, which hands
/// over the front end's open files as they are.
pub fn channel() -> (ChannelSender, ChannelReceiver) {
    let (sender, messages) = crossbeam_channel::unbounded();
    (
        ChannelSender(sender),
        ChannelReceiver {
            messages,
            rest: Vec::new(),
        },
    )
}

impl Deliver for ChannelSender {
    fn deliver(&mut self, frame: &[u8], file: Option<&File>) -> io::Result<()> {
        let file = file.map(File::try_clone).transpose()?;
        self.0
            .send((frame.to_vec(), file))
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

impl Receive for ChannelReceiver {
    fn receive(&mut self, buf: &mut [u8], files: &mut Vec<(usize, File)>) -> io::Result<usize> {
        if self.rest.is_empty() {
            match self.messages.recv() {
                Ok((bytes, file)) => {
                    self.rest = bytes;
                    files.extend(file.map(|file| (0, file)));
                }
                Err(_) => return Ok(0),
            }
        }
        let mut n = 0;
        // As much as has been sent and fits, as a pipe would give it.
        loop {
            let take = (buf.len() - n).min(self.rest.len());
            buf[n..n + take].copy_from_slice(&self.rest[..take]);
            self.rest.drain(..take);
            n += take;
            if n == buf.len() || !self.rest.is_empty() {
                return Ok(n);
            }
            match self.messages.try_recv() {
                Ok((bytes, file)) => {
                    self.rest = bytes;
                    files.extend(file.map(|file| (n, file)));
                }
                Err(_) => return Ok(n),
            }
        }
    }
}

#[cfg(unix)]
mod unix {
    use std::fs::File;
    use std::io::{self, Write};
    use std::os::unix::net::UnixStream;

    use super::{Deliver, Receive};

    impl Receive for UnixStream {
        fn receive(&mut self, buf: &mut [u8], files: &mut Vec<(usize, File)>) -> io::Result<usize> {
            // A frame carries one file; the worker refuses a frame with more and closes them all.
            let mut received = Vec::new();
            let result = graver_drives::receive_with_files(self, buf, &mut received);
            // The read ends with the byte they came with.
            let at = result.as_ref().map_or(0, |n| n.saturating_sub(1));
            files.extend(received.into_iter().map(|file| (at, file)));
            result
        }
    }

    impl Deliver for UnixStream {
        fn deliver(&mut self, frame: &[u8], file: Option<&File>) -> io::Result<()> {
            let Some(file) = file else {
                return self.write_all(frame);
            };
            // The first byte alone: the read that brings the descriptor then ends in its frame.
            let first = frame.get(..1).ok_or(io::ErrorKind::InvalidInput)?;
            let sent = graver_drives::send_with_file(self, first, file)?;
            // The descriptor went with the first byte; the rest of the frame follows plain.
            self.write_all(&frame[sent..])
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_channel_hands_over_the_file_with_the_first_byte_and_splits_bytes_as_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"content").unwrap();
        let file = File::open(&path).unwrap();
        let (mut sender, mut receiver) = channel();
        sender.deliver(b"abcdef", Some(&file)).unwrap();
        sender.deliver(b"gh", None).unwrap();
        sender.deliver(b"ij", Some(&file)).unwrap();
        drop(sender);
        let mut files = Vec::new();
        let mut buf = [0u8; 4];
        assert_eq!(receiver.receive(&mut buf, &mut files).unwrap(), 4);
        assert_eq!(&buf, b"abcd");
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].0, 0, "the file goes with its message's first byte");
        let mut read = String::new();
        files.remove(0).1.read_to_string(&mut read).unwrap();
        assert_eq!(read, "content");
        let mut buf = [0u8; 16];
        assert_eq!(receiver.receive(&mut buf, &mut files).unwrap(), 6);
        assert_eq!(&buf[..6], b"efghij");
        assert_eq!(files.iter().map(|(at, _)| *at).collect::<Vec<_>>(), [4]);
        assert_eq!(receiver.receive(&mut buf, &mut files).unwrap(), 0);
    }

    #[test]
    fn a_plain_stream_refuses_to_carry_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let mut plain = Plain(Vec::new());
        let error = plain.deliver(b"ab", Some(&File::open(&path).unwrap())).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::Unsupported);
        assert!(plain.0.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn a_descriptor_crosses_a_socket_with_the_first_byte_of_its_frame() {
        use std::os::unix::net::UnixStream;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"the image").unwrap();
        let (mut front, mut worker) = UnixStream::pair().unwrap();
        front.deliver(b"plain", None).unwrap();
        front
            .deliver(b"with a file", Some(&File::open(&path).unwrap()))
            .unwrap();
        drop(front);
        let mut files = Vec::new();
        let mut buf = [0u8; 3];
        // The plain bytes never bring the descriptor along, however they are cut up.
        let mut got = Vec::new();
        while got.len() < 5 {
            let n = worker.receive(&mut buf[..(5 - got.len()).min(3)], &mut files).unwrap();
            got.extend_from_slice(&buf[..n]);
            assert!(files.is_empty());
        }
        assert_eq!(got, b"plain");
        let n = worker.receive(&mut buf, &mut files).unwrap();
        assert_eq!(&buf[..n], b"w", "the read ends with the byte the descriptor came with");
        assert_eq!(files.len(), 1, "the descriptor came with the frame's first byte");
        assert_eq!(files[0].0, 0);
        let mut rest = Vec::new();
        let mut more = [0u8; 64];
        loop {
            let n = worker.receive(&mut more, &mut files).unwrap();
            if n == 0 {
                break;
            }
            rest.extend_from_slice(&more[..n]);
        }
        assert_eq!(rest, b"ith a file");
        assert_eq!(files.len(), 1);
        let mut read = String::new();
        files.remove(0).1.read_to_string(&mut read).unwrap();
        assert_eq!(read, "the image");
    }
}
