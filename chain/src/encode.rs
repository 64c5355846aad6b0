//! The canonical binary encoding of everything the chain signs or hashes: little-endian
//! fixed-width integers, u32-length-prefixed bytes, strings and lists, and a version byte in
//! front of every top-level object. There is exactly one encoding of each value, and the
//! reader is strict: every length is bounded before anything is allocated, strings must be
//! UTF-8, enum tags and versions must be known, and trailing bytes are an error.

/// Why bytes did not decode; `at` is the byte offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} at byte {at}: {why}")]
pub struct DecodeError {
    pub what: &'static str,
    pub at: usize,
    pub why: String,
}

/// Appends canonical encodings to a byte vector.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn fixed(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(v.len() as u32);
        self.fixed(v)
    }

    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// A list: its count, then each item through `item`.
    pub fn list<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) -> &mut Self {
        self.u32(items.len() as u32);
        for i in items {
            item(self, i);
        }
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads a canonical encoding, refusing anything malformed.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader of `buf`, which holds a `what` (named in errors).
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    pub fn err(&self, why: impl Into<String>) -> DecodeError {
        DecodeError {
            what: self.what,
            at: self.pos,
            why: why.into(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() - self.pos < n {
            return Err(self.err(format!(
                "needs {n} more bytes, {} left",
                self.buf.len() - self.pos
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }

    /// A length-prefixed byte string of at most `max` bytes.
    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(self.err(format!("length {n} is over the limit of {max}")));
        }
        self.take(n)
    }

    pub fn str(&mut self, max: usize) -> Result<String, DecodeError> {
        let b = self.bytes(max)?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|_| self.err("a string is not UTF-8"))
    }

    /// A list of at most `max` items, each read by `item`.
    pub fn list<T>(
        &mut self,
        max: usize,
        mut item: impl FnMut(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let n = self.u32()? as usize;
        if n > max {
            return Err(self.err(format!("{n} items is over the limit of {max}")));
        }
        let mut out = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            out.push(item(self)?);
        }
        Ok(out)
    }

    /// Checks the version byte of an object.
    pub fn version(&mut self, known: u8) -> Result<(), DecodeError> {
        let v = self.u8()?;
        if v != known {
            return Err(self.err(format!("version {v} is unknown (expected {known})")));
        }
        Ok(())
    }

    /// Ends the read: trailing bytes are an error.
    pub fn end(self) -> Result<(), DecodeError> {
        if self.pos != self.buf.len() {
            return Err(self.err(format!("{} trailing bytes", self.buf.len() - self.pos)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_in_one_canonical_form() {
        let mut w = Writer::new();
        w.u8(1)
            .u32(0xdead_beef)
            .u64(7)
            .fixed(&[9; 3])
            .str("fx")
            .list(&[1u64, 2], |w, v| {
                w.u64(*v);
            });
        let bytes = w.finish();
        assert_eq!(&bytes[..5], &[1, 0xef, 0xbe, 0xad, 0xde]);
        let mut r = Reader::new(&bytes, "test");
        r.version(1).unwrap();
        assert_eq!(r.u32().unwrap(), 0xdead_beef);
        assert_eq!(r.u64().unwrap(), 7);
        assert_eq!(r.fixed::<3>().unwrap(), [9; 3]);
        assert_eq!(r.str(10).unwrap(), "fx");
        assert_eq!(r.list(4, |r| r.u64()).unwrap(), [1, 2]);
        r.end().unwrap();
    }

    #[test]
    fn malformed_input_is_refused_with_its_offset() {
        let mut w = Writer::new();
        w.u32(1_000_000);
        let huge = w.finish();
        let e = Reader::new(&huge, "tx").bytes(1024).unwrap_err();
        assert_eq!(
            e.to_string(),
            "tx at byte 4: length 1000000 is over the limit of 1024"
        );
        let e = Reader::new(&huge, "tx").list(8, |r| r.u8()).unwrap_err();
        assert!(e.why.contains("over the limit"), "{e}");
        let e = Reader::new(&[2], "block").version(1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "block at byte 1: version 2 is unknown (expected 1)"
        );
        let e = Reader::new(&[1, 0], "tx").u32().unwrap_err();
        assert!(e.why.contains("needs 4 more bytes, 2 left"), "{e}");
        let mut r = Reader::new(&[1, 2], "tx");
        r.u8().unwrap();
        assert!(r.end().unwrap_err().why.contains("1 trailing bytes"));
        let mut w = Writer::new();
        w.bytes(&[0xff, 0xfe]);
        let bad = w.finish();
        assert!(Reader::new(&bad, "tx").str(8).is_err());
    }
}
