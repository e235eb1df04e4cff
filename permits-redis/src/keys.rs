//! The Redis keys of one semaphore name, all under one hash tag.

use crate::Error;

/// The longest name accepted, in bytes (keys stay well under Redis' limits
/// and readable in `MONITOR` / `SLOWLOG`).
pub(crate) const MAX_NAME_LEN: usize = 256;

/// Keys and the wake channel of one name: `permits:{<name>}:<part>`.
///
/// The braces are a Redis Cluster hash tag: every key of a name hashes to the
/// same slot, so one script may touch them all. Names reach Redis only as
/// script KEYS / ARGV, never inside script text, so any byte is safe there;
/// the two brace bytes are refused because a name containing them would move
/// the hash tag.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    pub(crate) holders: Vec<u8>,
    pub(crate) tokens: Vec<u8>,
    pub(crate) queue: Vec<u8>,
    pub(crate) waiters: Vec<u8>,
    pub(crate) meta: Vec<u8>,
    pub(crate) channel: Vec<u8>,
}

impl Keys {
    pub(crate) fn new(name: &[u8]) -> Result<Self, Error> {
        if name.is_empty() {
            return Err(Error::InvalidName("the name is empty"));
        }
        if name.len() > MAX_NAME_LEN {
            return Err(Error::InvalidName("the name is longer than 256 bytes"));
        }
        if name.iter().any(|&b| b == b'{' || b == b'}') {
            return Err(Error::InvalidName(
                "the name contains '{' or '}' (they would move the Redis Cluster hash tag)",
            ));
        }
        let key = |part: &str| {
            let mut k = Vec::with_capacity(name.len() + 20);
            k.extend_from_slice(b"permits:{");
            k.extend_from_slice(name);
            k.extend_from_slice(b"}:");
            k.extend_from_slice(part.as_bytes());
            k
        };
        Ok(Keys {
            holders: key("holders"),
            tokens: key("tokens"),
            queue: key("queue"),
            waiters: key("waiters"),
            meta: key("meta"),
            channel: key("wake"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_bytes_are_kept_verbatim() {
        let keys = Keys::new(b"a b\0\n\xff*?[x]").unwrap();
        assert_eq!(keys.holders, b"permits:{a b\0\n\xff*?[x]}:holders");
        assert_eq!(keys.channel, b"permits:{a b\0\n\xff*?[x]}:wake");
    }

    #[test]
    fn braces_empty_and_long_names_are_refused() {
        for bad in [&b""[..], b"a{b", b"a}b", &[b'x'; 257][..]] {
            assert!(
                matches!(Keys::new(bad), Err(Error::InvalidName(_))),
                "{bad:?}"
            );
        }
        assert!(Keys::new(&[b'x'; 256]).is_ok());
    }
}
