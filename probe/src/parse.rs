//! Parsing of command-line numbers, and device number splitting.

/// Parses a signed number: decimal (`-12`, `7`), `0x` hexadecimal or `0o`
/// octal, optionally negative. A leading `0` alone does not mean octal.
pub fn parse_i64(text: &str) -> Option<i64> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let magnitude = parse_unsigned(rest)?;
    if negative {
        if magnitude == 1u64 << 63 {
            Some(i64::MIN)
        } else {
            i64::try_from(magnitude).ok().map(|m| -m)
        }
    } else {
        // Hexadecimal values above i64::MAX (`0xffffffffffffffff`) keep their
        // bits: raw syscall arguments are register-sized.
        Some(magnitude as i64)
    }
}

/// Parses an unsigned number: decimal, `0x` hexadecimal or `0o` octal.
pub fn parse_u64(text: &str) -> Option<u64> {
    parse_unsigned(text)
}

fn parse_unsigned(text: &str) -> Option<u64> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return digits(hex, 16);
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return digits(oct, 8);
    }
    digits(text, 10)
}

/// A file mode, always octal (`755`, `0755`, `0o755`).
pub fn parse_mode(text: &str) -> Option<u32> {
    let oct = text.strip_prefix("0o").unwrap_or(text);
    let value = digits(oct, 8)?;
    u32::try_from(value).ok()
}

fn digits(text: &str, radix: u32) -> Option<u64> {
    // from_str_radix accepts a sign; only bare digits are wanted here.
    if text.is_empty() || !text.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(text, radix).ok()
}

/// The major number of a Linux `dev_t` (glibc's encoding).
pub fn dev_major(dev: u64) -> u64 {
    ((dev & 0x0000_0000_000f_ff00) >> 8) | ((dev & 0xffff_f000_0000_0000) >> 32)
}

/// The minor number of a Linux `dev_t` (glibc's encoding).
pub fn dev_minor(dev: u64) -> u64 {
    (dev & 0x0000_0000_0000_00ff) | ((dev & 0x0000_0fff_fff0_0000) >> 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_every_base() {
        assert_eq!(parse_i64("12"), Some(12));
        assert_eq!(parse_i64("-1"), Some(-1));
        assert_eq!(parse_i64("0x10"), Some(16));
        assert_eq!(parse_i64("0o17"), Some(15));
        assert_eq!(parse_i64("010"), Some(10));
        assert_eq!(parse_i64("0xffffffff"), Some(0xffff_ffff));
        assert_eq!(parse_i64("0xffffffffffffffff"), Some(-1));
        assert_eq!(parse_i64("-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_u64("0x20000000"), Some(0x2000_0000));
    }

    #[test]
    fn garbage_is_rejected() {
        for bad in ["", "-", "x", "0x", "1.5", "--1", "+-1", "0xg", "12a", " 1"] {
            assert_eq!(parse_i64(bad), None, "{bad:?}");
        }
        assert_eq!(parse_u64("-1"), None);
        assert_eq!(parse_u64("18446744073709551616"), None);
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("755"), Some(0o755));
        assert_eq!(parse_mode("0755"), Some(0o755));
        assert_eq!(parse_mode("0o1777"), Some(0o1777));
        assert_eq!(parse_mode("8"), None);
        assert_eq!(parse_mode(""), None);
    }

    #[test]
    fn device_numbers() {
        // makedev(1, 3) and makedev(136, 0), and a large one.
        assert_eq!((dev_major(0x103), dev_minor(0x103)), (1, 3));
        assert_eq!((dev_major(0x8800), dev_minor(0x8800)), (136, 0));
        let dev = (0x1234u64 & 0xfff) << 8 | (0x1234u64 & !0xfff) << 32 | (0x56789 & 0xff) | (0x56789 & !0xff) << 12;
        assert_eq!((dev_major(dev), dev_minor(dev)), (0x1234, 0x56789));
    }
}
