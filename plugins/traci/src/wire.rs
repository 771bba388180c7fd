//! TraCI's wire format: big-endian values, commands with a one-byte length (or a zero byte and
//! a four-byte length when longer than 255), typed values for variables, and messages with a
//! four-byte total length in front.

use crate::TraciError;

/// Value types (TraCI's type bytes).
pub mod types {
    pub const POSITION_2D: u8 = 0x01;
    pub const UBYTE: u8 = 0x07;
    pub const BYTE: u8 = 0x08;
    pub const INTEGER: u8 = 0x09;
    pub const DOUBLE: u8 = 0x0B;
    pub const STRING: u8 = 0x0C;
    pub const STRINGLIST: u8 = 0x0E;
    pub const COMPOUND: u8 = 0x0F;
}

/// A typed value a variable has.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    UByte(u8),
    Byte(i8),
    Int(i32),
    Double(f64),
    Str(String),
    StrList(Vec<String>),
    Position(f64, f64),
    Compound(Vec<Value>),
}

impl Value {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Double(v) => Some(*v),
            Value::Int(v) => Some(f64::from(*v)),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&[String]> {
        match self {
            Value::StrList(l) => Some(l),
            _ => None,
        }
    }
}

/// Bytes being written.
#[derive(Debug, Default, Clone)]
pub struct Out(pub Vec<u8>);

impl Out {
    pub fn ubyte(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }

    pub fn int(&mut self, v: i32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn double(&mut self, v: f64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn string(&mut self, s: &str) -> &mut Self {
        self.int(s.len() as i32);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
}

/// One command: its id and content, framed with its length.
pub fn command(id: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    if content.len() + 2 <= 255 {
        out.push((content.len() + 2) as u8);
    } else {
        out.push(0);
        out.extend_from_slice(&((content.len() + 6) as i32).to_be_bytes());
    }
    out.push(id);
    out.extend_from_slice(content);
    out
}

/// A message: commands behind the message's total length.
pub fn message(commands: &[Vec<u8>]) -> Vec<u8> {
    let len: usize = 4 + commands.iter().map(Vec::len).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&(len as i32).to_be_bytes());
    for c in commands {
        out.extend_from_slice(c);
    }
    out
}

/// Bytes being read; every read says what was malformed.
#[derive(Debug, Clone)]
pub struct In<'a> {
    bytes: &'a [u8],
    pub at: usize,
}

fn malformed(what: impl Into<String>) -> TraciError {
    TraciError::Malformed(what.into())
}

impl<'a> In<'a> {
    pub fn new(bytes: &'a [u8]) -> In<'a> {
        In { bytes, at: 0 }
    }

    pub fn is_done(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], TraciError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| {
                malformed(format!(
                    "{what}: {n} bytes wanted at {} of {}",
                    self.at,
                    self.bytes.len()
                ))
            })?;
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    pub fn ubyte(&mut self) -> Result<u8, TraciError> {
        Ok(self.take(1, "a byte")?[0])
    }

    pub fn int(&mut self) -> Result<i32, TraciError> {
        let b = self.take(4, "an integer")?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn double(&mut self) -> Result<f64, TraciError> {
        let b = self.take(8, "a double")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    pub fn string(&mut self) -> Result<String, TraciError> {
        let n = self.int()?;
        let n = usize::try_from(n).map_err(|_| malformed(format!("a string of length {n}")))?;
        let b = self.take(n, "a string")?;
        String::from_utf8(b.to_vec()).map_err(|_| malformed("a string that is not UTF-8"))
    }

    pub fn string_list(&mut self) -> Result<Vec<String>, TraciError> {
        let n = self.int()?;
        if !(0..=10_000_000).contains(&n) {
            return Err(malformed(format!("a string list of {n} items")));
        }
        (0..n).map(|_| self.string()).collect()
    }

    /// A value behind its type byte.
    pub fn typed(&mut self) -> Result<Value, TraciError> {
        let t = self.ubyte()?;
        Ok(match t {
            types::UBYTE => Value::UByte(self.ubyte()?),
            types::BYTE => Value::Byte(self.ubyte()? as i8),
            types::INTEGER => Value::Int(self.int()?),
            types::DOUBLE => Value::Double(self.double()?),
            types::STRING => Value::Str(self.string()?),
            types::STRINGLIST => Value::StrList(self.string_list()?),
            types::POSITION_2D => Value::Position(self.double()?, self.double()?),
            types::COMPOUND => {
                let n = self.int()?;
                if !(0..=1_000_000).contains(&n) {
                    return Err(malformed(format!("a compound of {n} items")));
                }
                Value::Compound((0..n).map(|_| self.typed()).collect::<Result<_, _>>()?)
            }
            other => return Err(malformed(format!("unknown value type 0x{other:02x}"))),
        })
    }

    /// The next command: its id and its content (read separately).
    pub fn command(&mut self) -> Result<(u8, In<'a>), TraciError> {
        let start = self.at;
        let short = self.ubyte()?;
        let len = if short == 0 {
            let n = self.int()?;
            usize::try_from(n).map_err(|_| malformed(format!("a command of length {n}")))?
        } else {
            usize::from(short)
        };
        let header = self.at - start;
        if len < header + 1 {
            return Err(malformed(format!("a command of length {len}")));
        }
        let id = self.ubyte()?;
        let content = self.take(len - header - 1, "a command's content")?;
        Ok((id, In::new(content)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_frame_short_and_long_and_read_back() {
        let short = command(0x02, &[1, 2, 3]);
        assert_eq!(short, [5, 0x02, 1, 2, 3]);
        let long_content = vec![7u8; 300];
        let long = command(0xd4, &long_content);
        assert_eq!(&long[..6], &[0, 0, 0, 1, 50, 0xd4]);
        assert_eq!(long.len(), 306);
        let msg = message(&[short.clone(), long.clone()]);
        assert_eq!(&msg[..4], &(4 + 5 + 306i32).to_be_bytes());
        let mut r = In::new(&msg[4..]);
        let (id, c) = r.command().expect("short");
        assert_eq!((id, c.bytes), (0x02, &[1u8, 2, 3][..]));
        let (id, c) = r.command().expect("long");
        assert_eq!((id, c.bytes.len()), (0xd4, 300));
        assert!(r.is_done());
    }

    #[test]
    fn typed_values_read_back_and_bad_bytes_say_what_is_wrong() {
        let mut o = Out::default();
        o.ubyte(types::POSITION_2D).double(1.5).double(-2.25);
        o.ubyte(types::STRINGLIST).int(2).string("a").string("bb");
        o.ubyte(types::COMPOUND).int(2);
        o.ubyte(types::INTEGER).int(-7);
        o.ubyte(types::STRING).string("GrGr");
        let mut r = In::new(&o.0);
        assert_eq!(r.typed().expect("pos"), Value::Position(1.5, -2.25));
        assert_eq!(
            r.typed().expect("list"),
            Value::StrList(vec!["a".into(), "bb".into()])
        );
        assert_eq!(
            r.typed().expect("compound"),
            Value::Compound(vec![Value::Int(-7), Value::Str("GrGr".into())])
        );
        for (bytes, why) in [
            (&[0x0B, 0, 0][..], "a double"),
            (&[0x55][..], "unknown value type 0x55"),
            (&[0x0C, 0xFF, 0xFF, 0xFF, 0xFF][..], "a string of length -1"),
            (&[0x0C, 0, 0, 0, 2, 0xC3, 0x28][..], "not UTF-8"),
            (&[0x0E, 0x7F, 0, 0, 0][..], "a string list of"),
        ] {
            let e = In::new(bytes).typed().expect_err("bad");
            assert!(e.to_string().contains(why), "{e}");
        }
        assert!(
            In::new(&[1]).command().is_err(),
            "a command shorter than its header"
        );
        assert!(
            In::new(&[9, 1, 2]).command().is_err(),
            "a command cut short"
        );
    }
}
