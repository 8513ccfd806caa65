//! The tar format, as WebDataset shards use it: a push scanner that reads members from bytes
//! as they arrive (the whole shard need never be in memory), and a deterministic writer.
//!
//! Read: ustar and GNU headers, octal and base-256 sizes, PAX extended headers (`path`,
//! `size`), GNU long names (`L`); directories, links and other entries are skipped; the end is
//! two zero blocks or the end of the data at a header boundary. Every header checksum is
//! verified. Write: ustar, names over 100 bytes split into prefix/name or, failing that, a PAX
//! `path` record; mode 0644, owner 0, mtime 0, so the same input gives the same bytes.

use bytes::{Buf, Bytes, BytesMut};

/// Tar block size in bytes.
pub const BLOCK: usize = 512;
/// Largest PAX or GNU long-name payload accepted, in bytes. Default: 64 KiB.
pub const MAX_EXTENSION: u64 = 64 << 10;

/// A tar parsing error, with the byte offset in the archive where it was found.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TarError {
    /// The header at `offset` is damaged.
    #[error("bad tar header at byte {offset}: {why}")]
    BadHeader {
        /// Offset of the header in the shard.
        offset: u64,
        /// What is wrong with it.
        why: String,
    },
    /// The archive ends inside a header or a member's data.
    #[error("truncated tar: the data ends at byte {at} inside {inside}")]
    Truncated {
        /// Where the shard ends.
        at: u64,
        /// What was being read there.
        inside: String,
    },
}

/// One regular file of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Path inside the archive.
    pub name: String,
    /// Offset of its first header block (PAX or long-name headers included).
    pub header_offset: u64,
    /// Offset of its data.
    pub data_offset: u64,
    /// Data length in bytes.
    pub size: u64,
    /// The data, when the scanner keeps data; else empty.
    pub data: Bytes,
    /// CRC32C of the data (computed in both modes).
    pub crc32c: u32,
}

impl Member {
    /// Offset just past the member's data and its padding to a block boundary.
    pub fn end(&self) -> u64 {
        self.data_offset + padded(self.size)
    }
}

/// `n` rounded up to a whole number of blocks.
pub fn padded(n: u64) -> u64 {
    n.div_ceil(BLOCK as u64) * BLOCK as u64
}

enum State {
    Header,
    /// Reading an extension payload (PAX 'x' or GNU 'L') of `size` bytes.
    Extension {
        kind: u8,
        size: u64,
        first_header: u64,
    },
    /// Reading (or skipping) a member's data; `member` is None for skipped entries.
    Data {
        member: Option<Member>,
        left: u64,
        pad: u64,
        kept: BytesMut,
        crc: u32,
    },
    End,
}

/// Reads members out of a tar stream fed in pieces. Feed bytes with [`TarScanner::push`] (it
/// consumes what it can from the buffer) and call [`TarScanner::finish`] at the end of the
/// stream.
pub struct TarScanner {
    pos: u64,
    keep_data: bool,
    state: State,
    /// Name and size overrides from PAX or GNU headers, for the next member.
    next_name: Option<String>,
    next_size: Option<u64>,
    /// Offset of the first extension header of the next member.
    ext_start: Option<u64>,
    /// Symbolic and hard links met since [`TarScanner::take_links`] last ran: not members
    /// (they hold no bytes), but a dataset's author may have meant them as samples.
    links: Vec<(String, &'static str)>,
}

impl TarScanner {
    /// A scanner; with `keep_data`, members carry their data.
    pub fn new(keep_data: bool) -> Self {
        Self::at(0, keep_data)
    }

    /// A scanner whose first byte is at `offset` in the archive (offsets it reports count from
    /// the start of the archive); `offset` must be a header boundary.
    pub fn at(offset: u64, keep_data: bool) -> Self {
        Self {
            pos: offset,
            keep_data,
            state: State::Header,
            next_name: None,
            next_size: None,
            ext_start: None,
            links: Vec::new(),
        }
    }

    /// The symbolic and hard links met since the last call, with what each is.
    pub fn take_links(&mut self) -> Vec<(String, &'static str)> {
        std::mem::take(&mut self.links)
    }

    /// Bytes consumed so far (the archive offset of the next unread byte).
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Whether the end-of-archive marker was seen.
    pub fn ended(&self) -> bool {
        matches!(self.state, State::End)
    }

    /// Consumes bytes from `buf` and returns the next complete member, or None when it needs
    /// more bytes (or the archive ended). Call again until it returns None.
    pub fn push(&mut self, buf: &mut BytesMut) -> Result<Option<Member>, TarError> {
        loop {
            match &mut self.state {
                State::End => {
                    // Whatever follows the end marker (record padding) is ignored.
                    self.pos += buf.len() as u64;
                    buf.clear();
                    return Ok(None);
                }
                State::Header => {
                    if buf.len() < BLOCK {
                        return Ok(None);
                    }
                    let block = buf.split_to(BLOCK);
                    let at = self.pos;
                    self.pos += BLOCK as u64;
                    if block.iter().all(|&b| b == 0) {
                        // One zero block ends the archive for us; a second is optional.
                        self.state = State::End;
                        continue;
                    }
                    self.header(&block, at)?;
                }
                State::Extension { size, .. } => {
                    let need = padded(*size) as usize;
                    if buf.len() < need {
                        return Ok(None);
                    }
                    let State::Extension {
                        kind,
                        size,
                        first_header,
                    } = std::mem::replace(&mut self.state, State::Header)
                    else {
                        unreachable!()
                    };
                    let payload = buf.split_to(need);
                    let payload = &payload[..size as usize];
                    let at = self.pos;
                    self.pos += need as u64;
                    self.ext_start.get_or_insert(first_header);
                    if kind == b'L' {
                        let end = payload
                            .iter()
                            .position(|&b| b == 0)
                            .unwrap_or(payload.len());
                        let name = std::str::from_utf8(&payload[..end]).map_err(|_| {
                            TarError::BadHeader {
                                offset: at,
                                why: "GNU long name is not UTF-8".into(),
                            }
                        })?;
                        self.next_name = Some(name.to_string());
                    } else {
                        self.pax(payload, at)?;
                    }
                }
                State::Data {
                    left,
                    pad,
                    kept,
                    crc,
                    ..
                } => {
                    if *left > 0 {
                        if buf.is_empty() {
                            return Ok(None);
                        }
                        let n = (*left).min(buf.len() as u64) as usize;
                        let chunk = buf.split_to(n);
                        *crc = crc32c::crc32c_append(*crc, &chunk);
                        if self.keep_data {
                            if kept.is_empty() && chunk.len() as u64 == *left {
                                // The whole member arrived at once: no copy.
                                *kept = chunk;
                            } else {
                                kept.extend_from_slice(&chunk);
                            }
                        }
                        *left -= n as u64;
                        self.pos += n as u64;
                        continue;
                    }
                    if *pad > 0 {
                        if buf.is_empty() {
                            return Ok(None);
                        }
                        let n = (*pad).min(buf.len() as u64) as usize;
                        buf.advance(n);
                        *pad -= n as u64;
                        self.pos += n as u64;
                        continue;
                    }
                    let State::Data {
                        member, kept, crc, ..
                    } = std::mem::replace(&mut self.state, State::Header)
                    else {
                        unreachable!()
                    };
                    if let Some(mut m) = member {
                        m.data = kept.freeze();
                        m.crc32c = crc;
                        return Ok(Some(m));
                    }
                }
            }
        }
    }

    /// Checks that the stream ended where an archive may end. Call once all bytes were pushed
    /// (and `push` returned None).
    pub fn finish(&self, buf: &BytesMut) -> Result<(), TarError> {
        match &self.state {
            State::End => Ok(()),
            State::Header if buf.is_empty() => Ok(()),
            State::Header => Err(TarError::Truncated {
                at: self.pos + buf.len() as u64,
                inside: format!("the header at byte {}", self.pos),
            }),
            State::Extension { first_header, .. } => Err(TarError::Truncated {
                at: self.pos + buf.len() as u64,
                inside: format!("the extended header at byte {first_header}"),
            }),
            State::Data { member, .. } => Err(TarError::Truncated {
                at: self.pos + buf.len() as u64,
                inside: match member {
                    Some(m) => format!("member {:?}", m.name),
                    None => "a skipped entry".into(),
                },
            }),
        }
    }

    fn header(&mut self, h: &[u8], at: u64) -> Result<(), TarError> {
        let bad = |why: &str| TarError::BadHeader {
            offset: at,
            why: why.to_string(),
        };
        let stored = parse_octal(&h[148..156]).ok_or_else(|| bad("unreadable checksum"))?;
        let unsigned: u64 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    b as u64
                }
            })
            .sum();
        let signed: i64 = h
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    b as i8 as i64
                }
            })
            .sum();
        if stored != unsigned && stored as i64 != signed {
            return Err(bad("header checksum mismatch"));
        }
        let kind = h[156];
        let size = match self.next_size.take() {
            Some(s) => s,
            None => parse_size(&h[124..136]).ok_or_else(|| bad("unreadable size"))?,
        };
        if size > (1u64 << 50) {
            return Err(bad("member size out of range"));
        }
        match kind {
            b'x' | b'L' => {
                if size > MAX_EXTENSION {
                    return Err(bad("extended header too large"));
                }
                self.state = State::Extension {
                    kind,
                    size,
                    first_header: self.ext_start.unwrap_or(at),
                };
                return Ok(());
            }
            _ => {}
        }
        let first_header = self.ext_start.take().unwrap_or(at);
        let regular = matches!(kind, 0 | b'0' | b'7');
        let member = if regular {
            let name = match self.next_name.take() {
                Some(n) => n,
                None => ustar_name(h).map_err(bad)?,
            };
            if name.is_empty() {
                return Err(bad("empty member name"));
            }
            Some(Member {
                name,
                header_offset: first_header,
                data_offset: self.pos,
                size,
                data: Bytes::new(),
                crc32c: 0,
            })
        } else {
            let name = self.next_name.take();
            if matches!(kind, b'1' | b'2') {
                let name = name.or_else(|| ustar_name(h).ok()).unwrap_or_default();
                let what = if kind == b'2' {
                    "a symbolic link, not a file"
                } else {
                    "a hard link, not a file"
                };
                // Bounded: a hostile archive of links costs a count, not memory.
                if self.links.len() < 1024 {
                    self.links.push((name, what));
                }
            }
            None
        };
        // Directories, links, devices and global PAX headers: their data (if any) is skipped.
        let size = if matches!(kind, b'1' | b'2' | b'3' | b'4' | b'5' | b'6') {
            0
        } else {
            size
        };
        self.state = State::Data {
            member,
            left: size,
            pad: padded(size) - size,
            kept: BytesMut::new(),
            crc: 0,
        };
        Ok(())
    }

    fn pax(&mut self, mut p: &[u8], at: u64) -> Result<(), TarError> {
        let bad = |why: &str| TarError::BadHeader {
            offset: at,
            why: format!("PAX record: {why}"),
        };
        while !p.is_empty() {
            let sp = p
                .iter()
                .position(|&b| b == b' ')
                .ok_or_else(|| bad("no length"))?;
            let len: usize = std::str::from_utf8(&p[..sp])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("bad length"))?;
            if len <= sp + 1 || len > p.len() || p[len - 1] != b'\n' {
                return Err(bad("length out of bounds"));
            }
            let rec = &p[sp + 1..len - 1];
            let eq = rec
                .iter()
                .position(|&b| b == b'=')
                .ok_or_else(|| bad("no '='"))?;
            let (k, v) = (&rec[..eq], &rec[eq + 1..]);
            match k {
                b"path" => {
                    let v = std::str::from_utf8(v).map_err(|_| bad("path is not UTF-8"))?;
                    self.next_name = Some(v.to_string());
                }
                b"size" => {
                    let v = std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| bad("bad size"))?;
                    self.next_size = Some(v);
                }
                _ => {}
            }
            p = &p[len..];
        }
        Ok(())
    }
}

fn field(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    &b[..end]
}

/// The member name of a ustar header, with its prefix; `Err` says which field is not UTF-8.
fn ustar_name(h: &[u8]) -> Result<String, &'static str> {
    let name = std::str::from_utf8(field(&h[0..100])).map_err(|_| "name is not UTF-8")?;
    // The prefix field exists in POSIX ustar ("ustar\0"), not in old GNU ("ustar  ").
    if &h[257..263] == b"ustar\0" {
        let prefix = std::str::from_utf8(field(&h[345..500])).map_err(|_| "prefix is not UTF-8")?;
        if !prefix.is_empty() {
            return Ok(format!("{prefix}/{name}"));
        }
    }
    Ok(name.to_string())
}

fn parse_octal(b: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(b).ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c == ' ');
    if s.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(s, 8).ok()
}

fn parse_size(b: &[u8]) -> Option<u64> {
    if b[0] & 0x80 != 0 {
        // GNU base-256: the rest is a big-endian number.
        if b[0] != 0x80 || b[1..4].iter().any(|&x| x != 0) {
            return None;
        }
        return Some(b[4..].iter().fold(0u64, |a, &x| (a << 8) | x as u64));
    }
    parse_octal(b)
}

/// Writes a deterministic tar archive member by member.
pub struct TarWriter<W: std::io::Write> {
    out: W,
    pos: u64,
}

impl<W: std::io::Write> TarWriter<W> {
    /// A writer that starts at offset 0 of `out`.
    pub fn new(out: W) -> Self {
        Self { out, pos: 0 }
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Appends a regular file; returns the offset of its data.
    pub fn append(&mut self, name: &str, data: &[u8]) -> std::io::Result<u64> {
        self.append_header(name, data.len() as u64)?;
        let at = self.pos;
        self.out.write_all(data)?;
        self.pos += data.len() as u64;
        self.pad(data.len() as u64)?;
        Ok(at)
    }

    /// Appends a regular file of `size` bytes copied from `src`; returns the offset of its
    /// data and the data's CRC32C. Fails if `src` holds fewer or more bytes than `size`.
    pub fn append_from(
        &mut self,
        name: &str,
        size: u64,
        src: &mut impl std::io::Read,
    ) -> std::io::Result<(u64, u32)> {
        self.append_header(name, size)?;
        let at = self.pos;
        let mut buf = vec![0u8; (size as usize).clamp(1, 1 << 20)];
        let mut left = size;
        let mut crc = 0;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            let n = src.read(&mut buf[..want])?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{name}: the file shrank while being packed"),
                ));
            }
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            self.out.write_all(&buf[..n])?;
            left -= n as u64;
        }
        if src.read(&mut buf[..1])? != 0 {
            return Err(std::io::Error::other(format!(
                "{name}: the file grew while being packed"
            )));
        }
        self.pos += size;
        self.pad(size)?;
        Ok((at, crc))
    }

    fn pad(&mut self, n: u64) -> std::io::Result<()> {
        let p = (padded(n) - n) as usize;
        self.out.write_all(&[0u8; BLOCK][..p])?;
        self.pos += p as u64;
        Ok(())
    }

    fn append_header(&mut self, name: &str, size: u64) -> std::io::Result<()> {
        let (prefix, short) = match split_name(name) {
            Some(x) => x,
            None => {
                // A PAX header carries the full path.
                let rec = pax_record("path", name);
                let h = header_block("././@PaxHeader", "", rec.len() as u64, b'x');
                self.out.write_all(&h)?;
                self.out.write_all(&rec)?;
                self.pos += BLOCK as u64 + rec.len() as u64;
                self.pad(rec.len() as u64)?;
                ("", truncate_utf8(name, 100))
            }
        };
        self.out
            .write_all(&header_block(short, prefix, size, b'0'))?;
        self.pos += BLOCK as u64;
        Ok(())
    }

    /// Writes the end-of-archive marker (two zero blocks) and returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        self.pos += 2 * BLOCK as u64;
        Ok(self.out)
    }
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Splits a path into ustar (prefix, name) fields, if it fits.
fn split_name(name: &str) -> Option<(&str, &str)> {
    if name.len() <= 100 {
        return Some(("", name));
    }
    if name.len() > 256 {
        return None;
    }
    // The last '/' such that the prefix fits in 155 bytes and the name in 100.
    name.match_indices('/')
        .map(|(i, _)| i)
        .rfind(|&i| i <= 155 && name.len() - i - 1 <= 100 && i > 0)
        .map(|i| (&name[..i], &name[i + 1..]))
}

fn pax_record(key: &str, value: &str) -> Vec<u8> {
    // "LEN key=value\n", where LEN counts its own digits.
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len.to_string().len() + body != len {
        len = body + len.to_string().len();
    }
    format!("{len} {key}={value}\n").into_bytes()
}

fn header_block(name: &str, prefix: &str, size: u64, kind: u8) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let octal = |h: &mut [u8; BLOCK], at: usize, width: usize, v: u64| {
        let s = format!("{v:0w$o}\0", w = width - 1);
        h[at..at + width].copy_from_slice(s.as_bytes());
    };
    octal(&mut h, 100, 8, 0o644);
    octal(&mut h, 108, 8, 0);
    octal(&mut h, 116, 8, 0);
    if size < (1u64 << 33) {
        octal(&mut h, 124, 12, size);
    } else {
        // GNU base-256 for members of 8 GiB and more.
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    octal(&mut h, 136, 12, 0);
    h[156] = kind;
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// Scans a whole archive held in memory.
pub fn scan_all(bytes: &[u8], keep_data: bool) -> Result<Vec<Member>, TarError> {
    let mut s = TarScanner::new(keep_data);
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(m) = s.push(&mut buf)? {
        out.push(m);
    }
    s.finish(&buf)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = TarWriter::new(Vec::new());
        for (n, d) in members {
            w.append(n, d).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn round_trip_in_any_pieces() {
        let long = format!("{}/{}.jpg", "d".repeat(120), "k".repeat(60));
        let longer = format!("{}.json", "x".repeat(300));
        let files: Vec<(&str, &[u8])> = vec![
            ("a.jpg", b"jpeg bytes"),
            ("a.json", b"{}"),
            (&long, b"long"),
            (&longer, &[7u8; 1000]),
            ("empty.txt", b""),
        ];
        let bytes = archive(&files);
        assert_eq!(bytes.len() % BLOCK, 0);
        for piece in [1usize, 7, 512, 513, 100_000] {
            let mut s = TarScanner::new(true);
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for chunk in bytes.chunks(piece) {
                buf.extend_from_slice(chunk);
                while let Some(m) = s.push(&mut buf).unwrap() {
                    got.push(m);
                }
            }
            s.finish(&buf).unwrap();
            assert_eq!(got.len(), files.len());
            for (m, (n, d)) in got.iter().zip(&files) {
                assert_eq!(&m.name, n);
                assert_eq!(&m.data[..], *d);
                assert_eq!(m.crc32c, crc32c::crc32c(d));
                assert_eq!(&bytes[m.data_offset as usize..][..m.size as usize], *d);
            }
        }
    }

    #[test]
    fn the_writer_is_deterministic() {
        let a = archive(&[("x.bin", b"1"), ("y.bin", b"2")]);
        let b = archive(&[("x.bin", b"1"), ("y.bin", b"2")]);
        assert_eq!(a, b);
    }

    #[test]
    fn damage_is_reported_with_its_offset() {
        let mut bytes = archive(&[("a.txt", b"hello"), ("b.txt", b"world")]);
        // Truncated inside the second member's data.
        let cut = &bytes[..512 * 3 + 2];
        match scan_all(cut, false) {
            Err(TarError::Truncated { inside, .. }) => assert!(inside.contains("b.txt")),
            other => panic!("{other:?}"),
        }
        // Truncated inside a header.
        assert!(matches!(
            scan_all(&bytes[..700], false),
            Err(TarError::Truncated { .. })
        ));
        // A flipped byte in the second header.
        bytes[1024 + 3] ^= 0x20;
        match scan_all(&bytes, false) {
            Err(TarError::BadHeader { offset, why }) => {
                assert_eq!(offset, 1024);
                assert!(why.contains("checksum"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pax_records_count_their_own_length() {
        for n in [1, 5, 90, 95, 96, 97, 1000] {
            let r = pax_record("path", &"p".repeat(n));
            let len: usize = std::str::from_utf8(&r[..r.iter().position(|&b| b == b' ').unwrap()])
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(len, r.len());
        }
    }
}
