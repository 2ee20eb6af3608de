//! A decoder for LZ4's "legacy" frame format, the one the kernel's build
//! compresses a bzImage's payload with (`lz4 -l`): the magic 0x184C2102,
//! then blocks, each a little-endian u32 of its compressed size followed by
//! an LZ4 block that decodes on its own to at most 8 MiB. Written from the
//! format's description (lz4's doc/lz4_Block_format.md and the legacy frame
//! section of doc/lz4_Frame_format.md).

/// The legacy frame's magic number (little-endian on disk).
pub const LEGACY_MAGIC: u32 = 0x184C_2102;
/// A legacy block decodes to at most this.
pub const LEGACY_BLOCK_MAX: usize = 8 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Lz4Error {
    #[error("lz4: not a legacy frame (magic {0:#010x})")]
    Magic(u32),
    #[error("lz4: block at {at} claims {size} bytes, {left} left")]
    BlockSize { at: usize, size: usize, left: usize },
    #[error("lz4: block truncated at input offset {0}")]
    Truncated(usize),
    #[error("lz4: match offset {offset} at output {pos} reaches before its block")]
    Offset { offset: usize, pos: usize },
    #[error("lz4: output over {0} bytes")]
    TooLarge(usize),
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Decodes a whole legacy stream (`input` ends at the last block; a magic
/// where a block size is expected starts another frame). `limit` caps the
/// output.
pub fn decode_legacy(input: &[u8], limit: usize) -> Result<Vec<u8>, Lz4Error> {
    let magic = u32_at(input, 0).ok_or(Lz4Error::Truncated(0))?;
    if magic != LEGACY_MAGIC {
        return Err(Lz4Error::Magic(magic));
    }
    let mut out = Vec::new();
    let mut at = 4;
    while at < input.len() {
        let size = u32_at(input, at).ok_or(Lz4Error::Truncated(at))?;
        at += 4;
        if size == LEGACY_MAGIC {
            continue;
        }
        let size = size as usize;
        let left = input.len() - at;
        if size > left {
            return Err(Lz4Error::BlockSize { at: at - 4, size, left });
        }
        let cap = limit.min(out.len() + LEGACY_BLOCK_MAX);
        decode_block(&input[at..at + size], &mut out, cap, at)?;
        at += size;
    }
    Ok(out)
}

/// The 4..=15 length nibble, extended by 255-valued bytes.
fn length(nibble: usize, block: &[u8], i: &mut usize, base: usize) -> Result<usize, Lz4Error> {
    let mut n = nibble;
    if nibble == 15 {
        loop {
            let b = *block.get(*i).ok_or(Lz4Error::Truncated(base + *i))?;
            *i += 1;
            n += b as usize;
            if b != 255 {
                break;
            }
        }
    }
    Ok(n)
}

/// Appends one independent LZ4 block's output to `out` (matches reach no
/// further back than the block's own output), up to `limit` bytes in all.
/// `base` is the block's offset in the stream, for errors.
pub fn decode_block(block: &[u8], out: &mut Vec<u8>, limit: usize, base: usize) -> Result<(), Lz4Error> {
    let start = out.len();
    let mut i = 0;
    while i < block.len() {
        let token = block[i] as usize;
        i += 1;
        let lit = length(token >> 4, block, &mut i, base)?;
        let lits = block.get(i..i + lit).ok_or(Lz4Error::Truncated(base + i))?;
        if out.len() + lit > limit {
            return Err(Lz4Error::TooLarge(limit));
        }
        out.extend_from_slice(lits);
        i += lit;
        if i == block.len() {
            // The last sequence has literals only.
            break;
        }
        let off = block.get(i..i + 2).ok_or(Lz4Error::Truncated(base + i))?;
        let offset = u16::from_le_bytes([off[0], off[1]]) as usize;
        i += 2;
        let len = length(token & 15, block, &mut i, base)? + 4;
        let pos = out.len();
        if offset == 0 || offset > pos - start {
            return Err(Lz4Error::Offset { offset, pos });
        }
        if pos + len > limit {
            return Err(Lz4Error::TooLarge(limit));
        }
        // A match may overlap what it produces (offset < len repeats the
        // last `offset` bytes): copy at most `offset` bytes at a time.
        let mut from = pos - offset;
        let mut left = len;
        while left > 0 {
            let n = left.min(out.len() - from);
            out.extend_from_within(from..from + n);
            from += n;
            left -= n;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(blocks: &[&[u8]]) -> Vec<u8> {
        let mut v = LEGACY_MAGIC.to_le_bytes().to_vec();
        for b in blocks {
            v.extend((b.len() as u32).to_le_bytes());
            v.extend(*b);
        }
        v
    }

    #[test]
    fn literals_and_an_overlapping_match() {
        // "abc", then a match of 9 at offset 3: "abcabcabcabc".
        let block = [0x35, b'a', b'b', b'c', 3, 0];
        assert_eq!(decode_legacy(&frame(&[&block]), 1 << 20).unwrap(), b"abcabcabcabc");
        // A run of one byte: offset 1.
        let block = [0x10, b'z', 1, 0, 0x00];
        let mut out = Vec::new();
        decode_block(&block[..4], &mut out, 100, 0).unwrap();
        assert_eq!(out, b"zzzzz");
    }

    #[test]
    fn long_lengths_extend_with_255_bytes() {
        // 15 + 255 + 10 = 280 literals 'x', then a match of 15+4+1 = 20.
        let mut block = vec![0xff, 255, 10];
        block.extend(std::iter::repeat_n(b'x', 280));
        block.extend([1, 0, 1]);
        block.extend([0x20, b'e', b'f']);
        let got = decode_legacy(&frame(&[&block]), 1 << 20).unwrap();
        assert_eq!(got.len(), 280 + 20 + 2);
        assert!(got[..300].iter().all(|&c| c == b'x'));
        assert_eq!(&got[300..], b"ef");
    }

    #[test]
    fn blocks_are_independent_and_frames_may_follow_each_other() {
        let a = [0x30, b'o', b'n', b'e'];
        // A match in block two may not reach into block one.
        let bad = [0x00, 3, 0];
        let e = decode_legacy(&frame(&[&a, &bad]), 1 << 20).unwrap_err();
        assert!(matches!(e, Lz4Error::Offset { offset: 3, pos: 3 }), "{e}");
        let mut two = frame(&[&a]);
        two.extend(frame(&[&[0x30, b't', b'w', b'o']]));
        assert_eq!(decode_legacy(&two, 1 << 20).unwrap(), b"onetwo");
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert!(matches!(
            decode_legacy(b"\x04\x22\x4d\x18", 10),
            Err(Lz4Error::Magic(_))
        ));
        assert!(matches!(decode_legacy(b"\x02\x21", 10), Err(Lz4Error::Truncated(0))));
        let mut f = frame(&[&[0x30, b'a']]);
        assert!(matches!(decode_legacy(&f, 10), Err(Lz4Error::Truncated(_))));
        f = LEGACY_MAGIC.to_le_bytes().to_vec();
        f.extend(100u32.to_le_bytes());
        assert!(matches!(
            decode_legacy(&f, 10),
            Err(Lz4Error::BlockSize { size: 100, .. })
        ));
        // Offset zero is invalid.
        assert!(decode_legacy(&frame(&[&[0x10, b'a', 0, 0]]), 100).is_err());
        // The output cap holds, for literals and for matches.
        assert!(matches!(
            decode_legacy(&frame(&[&[0x30, b'a', b'b', b'c']]), 2),
            Err(Lz4Error::TooLarge(2))
        ));
        assert!(matches!(
            decode_legacy(&frame(&[&[0x1f, b'a', 1, 0, 200]]), 100),
            Err(Lz4Error::TooLarge(100))
        ));
        // Every truncation of a valid block fails cleanly or decodes a prefix.
        let good = frame(&[&[0x35, b'a', b'b', b'c', 3, 0]]);
        for n in 0..good.len() {
            let _ = decode_legacy(&good[..n], 1 << 20);
        }
    }

    /// What the reference tool writes (`lz4 -l`), when it is installed.
    #[test]
    fn the_reference_tools_legacy_output_decodes() {
        let t = tempfile::tempdir().unwrap();
        let mut data = Vec::new();
        for i in 0..300_000u32 {
            data.extend(format!("line {} {}\n", i % 977, i * 7).as_bytes());
        }
        data.extend((0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        let src = t.path().join("in");
        std::fs::write(&src, &data).unwrap();
        let dst = t.path().join("in.lz4");
        let made = std::process::Command::new("lz4")
            .args(["-l", "-9", "-q", "-f"])
            .arg(&src)
            .arg(&dst)
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: no lz4 tool");
            return;
        }
        let packed = std::fs::read(&dst).unwrap();
        assert!(packed.len() < data.len() / 2);
        assert_eq!(decode_legacy(&packed, 64 << 20).unwrap(), data);
    }
}
