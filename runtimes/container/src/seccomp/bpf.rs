//! A tiny classic-BPF assembler with labels.
//!
//! Classic BPF conditional jumps carry 8-bit forward offsets (`jt`, `jf`), so
//! a filter with hundreds of system calls cannot reach every target directly.
//! The code generator therefore writes jumps to labels and this assembler lays
//! the program out: a conditional jump whose targets are within 255
//! instructions stays one instruction; one that is not becomes
//! `jcond k, 0, 1; ja T; ja F` (`BPF_JA` has a 32-bit offset). Widening a jump
//! only moves later code further away, so the layout is recomputed until no
//! jump needs widening (the sizes only grow, so this terminates).

use libc::sock_filter;

// Opcode pieces from <linux/bpf_common.h>; the libc crate has them as
// functions of mixed integer types, plain u16 constants read better here.
pub(crate) const BPF_LD: u16 = 0x00;
pub(crate) const BPF_ALU: u16 = 0x04;
pub(crate) const BPF_JMP: u16 = 0x05;
pub(crate) const BPF_RET: u16 = 0x06;
pub(crate) const BPF_W: u16 = 0x00;
pub(crate) const BPF_ABS: u16 = 0x20;
pub(crate) const BPF_AND: u16 = 0x50;
pub(crate) const BPF_JA: u16 = 0x00;
pub(crate) const BPF_JEQ: u16 = 0x10;
pub(crate) const BPF_JGT: u16 = 0x20;
pub(crate) const BPF_JGE: u16 = 0x30;
pub(crate) const BPF_K: u16 = 0x00;

/// The kernel's limit on a classic BPF program (BPF_MAXINSNS).
pub(crate) const MAX_INSNS: usize = 4096;

/// A place in the program, bound once with [`Asm::bind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Label(usize);

/// Where a conditional jump goes.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Target {
    /// The instruction right after the jump.
    Next,
    To(Label),
}

#[derive(Debug)]
enum Item {
    Stmt(sock_filter),
    Bind(Label),
    Jump { op: u16, k: u32, jt: Target, jf: Target },
}

/// An instruction list with unresolved jumps.
#[derive(Debug, Default)]
pub(crate) struct Asm {
    items: Vec<Item>,
    labels: usize,
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

impl Asm {
    pub(crate) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// Places `l` before the next instruction.
    pub(crate) fn bind(&mut self, l: Label) {
        self.items.push(Item::Bind(l));
    }

    /// `A = *(u32 *)(data + off)`.
    pub(crate) fn load(&mut self, off: u32) {
        self.items.push(Item::Stmt(insn(BPF_LD | BPF_W | BPF_ABS, 0, 0, off)));
    }

    /// `A &= k`.
    pub(crate) fn and(&mut self, k: u32) {
        self.items.push(Item::Stmt(insn(BPF_ALU | BPF_AND | BPF_K, 0, 0, k)));
    }

    /// `return k`.
    pub(crate) fn ret(&mut self, k: u32) {
        self.items.push(Item::Stmt(insn(BPF_RET | BPF_K, 0, 0, k)));
    }

    /// `if (A <op> k) goto jt else goto jf`, `op` one of BPF_JEQ/JGT/JGE.
    pub(crate) fn jump(&mut self, op: u16, k: u32, jt: Target, jf: Target) {
        self.items.push(Item::Jump { op, k, jt, jf });
    }

    /// Resolves the labels into a program. Errors are bugs in the code
    /// generator (an unbound label, a backward jump), never in the config.
    pub(crate) fn finish(self) -> Result<Vec<sock_filter>, String> {
        let n = self.items.len();
        let mut wide = vec![false; n];
        loop {
            let (pos, labels, _) = self.layout(&wide)?;
            let mut changed = false;
            for (i, item) in self.items.iter().enumerate() {
                if let Item::Jump { jt, jf, .. } = item {
                    if wide[i] {
                        continue;
                    }
                    let after = pos[i] + 1;
                    let reach = |t: &Target| match t {
                        Target::Next => Ok(true),
                        Target::To(l) => {
                            let to = labels[l.0];
                            if to < after {
                                return Err(format!("backward jump to label {}", l.0));
                            }
                            Ok(to - after <= u8::MAX as usize)
                        }
                    };
                    let (t_ok, f_ok) = (reach(jt)?, reach(jf)?);
                    if !(t_ok && f_ok) {
                        wide[i] = true;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        let (pos, labels, len) = self.layout(&wide)?;
        let mut out = Vec::with_capacity(len);
        for (i, item) in self.items.iter().enumerate() {
            match item {
                Item::Stmt(s) => out.push(*s),
                Item::Bind(_) => {}
                Item::Jump { op, k, jt, jf } => {
                    let code = BPF_JMP | op | BPF_K;
                    if wide[i] {
                        // jcond k, 0, 1; ja T; ja F. A `Next` target is the
                        // instruction after the three.
                        let end = pos[i] + 3;
                        let abs = |t: &Target| match t {
                            Target::Next => end,
                            Target::To(l) => labels[l.0],
                        };
                        out.push(insn(code, 0, 1, *k));
                        out.push(insn(BPF_JMP | BPF_JA, 0, 0, (abs(jt) - (pos[i] + 2)) as u32));
                        out.push(insn(BPF_JMP | BPF_JA, 0, 0, (abs(jf) - end) as u32));
                    } else {
                        let rel = |t: &Target| match t {
                            Target::Next => 0,
                            Target::To(l) => (labels[l.0] - (pos[i] + 1)) as u8,
                        };
                        out.push(insn(code, rel(jt), rel(jf), *k));
                    }
                }
            }
        }
        debug_assert_eq!(out.len(), len);
        Ok(out)
    }

    /// Instruction positions of items and labels, and the program length.
    fn layout(&self, wide: &[bool]) -> Result<(Vec<usize>, Vec<usize>, usize), String> {
        let mut pos = Vec::with_capacity(self.items.len());
        let mut labels = vec![usize::MAX; self.labels];
        let mut at = 0;
        for (i, item) in self.items.iter().enumerate() {
            pos.push(at);
            at += match item {
                Item::Bind(l) => {
                    labels[l.0] = at;
                    0
                }
                Item::Stmt(_) => 1,
                Item::Jump { .. } if wide[i] => 3,
                Item::Jump { .. } => 1,
            };
        }
        if let Some(l) = labels.iter().position(|&p| p == usize::MAX) {
            return Err(format!("label {l} never bound"));
        }
        Ok((pos, labels, at))
    }
}
