//! zstd-compressed layers, decoded in pure Rust (`ruzstd`): no C library
//! in the runtime, which is built fully static.
//!
//! A layer may hold several frames one after another, and zstd:chunked
//! layers (podman's) end with skippable frames holding their table of
//! contents: every frame is decoded in order, skippable ones are skipped.

use std::io::{self, BufRead, Read};

use ruzstd::decoding::errors::{FrameDecoderError, ReadFrameHeaderError};
use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};

/// Reads the decompressed content of every frame of `source`.
pub struct Frames<R: BufRead> {
    source: R,
    decoder: FrameDecoder,
    /// A frame is being decoded (its header was read).
    in_frame: bool,
}

impl<R: BufRead> Frames<R> {
    pub fn new(source: R) -> Self {
        Frames {
            source,
            decoder: FrameDecoder::new(),
            in_frame: false,
        }
    }

    /// Reads the next frame's header, skipping skippable frames; false at
    /// the end of the stream.
    fn next_frame(&mut self) -> io::Result<bool> {
        loop {
            if self.source.fill_buf()?.is_empty() {
                return Ok(false);
            }
            match self.decoder.init(&mut self.source) {
                Ok(()) => return Ok(true),
                Err(FrameDecoderError::ReadFrameHeaderError(ReadFrameHeaderError::SkipFrame {
                    length,
                    ..
                })) => {
                    let skipped = io::copy(
                        &mut (&mut self.source).take(u64::from(length)),
                        &mut io::sink(),
                    )?;
                    if skipped != u64::from(length) {
                        return Err(invalid("a skippable frame ends early"));
                    }
                }
                Err(e) => return Err(invalid(&e.to_string())),
            }
        }
    }
}

impl<R: BufRead> Read for Frames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if !self.next_frame()? {
                    return Ok(0);
                }
                self.in_frame = true;
            }
            while self.decoder.can_collect() == 0 && !self.decoder.is_finished() {
                self.decoder
                    .decode_blocks(&mut self.source, BlockDecodingStrategy::UptoBlocks(1))
                    .map_err(|e| invalid(&e.to_string()))?;
            }
            let n = self.decoder.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            self.in_frame = false;
        }
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zstd frame of `data` stored raw (one raw block, last), as the
    /// format describes it: magic, frame header with the content size,
    /// block header.
    fn raw_frame(data: &[u8]) -> Vec<u8> {
        let mut f = vec![0x28, 0xb5, 0x2f, 0xfd];
        // Frame header descriptor: single segment, 1-byte content size.
        f.push(0x20);
        f.push(data.len() as u8);
        // Block header: last block, raw, size.
        let h = 1 | ((data.len() as u32) << 3);
        f.extend_from_slice(&h.to_le_bytes()[..3]);
        f.extend_from_slice(data);
        f
    }

    fn decode(stream: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Frames::new(stream).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn frames_in_a_row_and_skippable_frames() {
        let mut s = raw_frame(b"first ");
        s.extend_from_slice(&[0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3]);
        s.extend(raw_frame(b"second"));
        assert_eq!(decode(&s).unwrap(), b"first second");
        assert_eq!(decode(&[]).unwrap(), b"");
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        let e = decode(b"not zstd at all").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        let f = raw_frame(b"some bytes");
        assert!(decode(&f[..f.len() - 3]).is_err());
        let mut skip = vec![0x50, 0x2a, 0x4d, 0x18, 9, 0, 0, 0, 1];
        assert!(decode(&skip).is_err());
        skip.truncate(4);
        assert!(decode(&skip).is_err());
    }
}
