use serde_json::json;

use super::*;

fn list(v: serde_json::Value) -> Vec<LinuxDeviceCgroup> {
    serde_json::from_value(v).unwrap()
}

/// Runs the program the way the kernel would, for one access request.
fn eval(p: &[Insn], typ: i32, access: u8, major: u32, minor: u32) -> bool {
    let ctx = [((access as u32) << 16) | typ as u32, major, minor];
    let mut r = [0u64; 11];
    let mut pc = 0usize;
    loop {
        let i = p[pc];
        let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
        pc += 1;
        match i.code {
            LDX_MEM_W => {
                assert_eq!(src, 1, "loads come from the context");
                r[dst] = u64::from(ctx[i.off as usize / 4]);
            }
            ALU32_AND_K => r[dst] = u64::from((r[dst] as u32) & i.imm as u32),
            ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
            ALU32_MOV_X => r[dst] = u64::from(r[src] as u32),
            ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
            JNE_K => {
                if r[dst] != i.imm as i64 as u64 {
                    pc += i.off as usize;
                }
            }
            JNE_X => {
                if r[dst] != r[src] {
                    pc += i.off as usize;
                }
            }
            EXIT => return r[0] == 1,
            c => panic!("unexpected opcode {c:#x}"),
        }
    }
}

#[test]
fn parses_rules() {
    let r = rules(&list(json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
        {"allow": true, "type": "b", "major": -1, "access": "m"},
        {"allow": true, "type": "p", "access": "rwm"},
        {"allow": true, "type": "u", "major": 4}
    ])))
    .unwrap();
    assert_eq!(r.len(), 4, "the fifo rule is dropped");
    assert_eq!(
        r[0],
        Rule {
            allow: false,
            kind: Kind::All,
            major: None,
            minor: None,
            access: ACC_ALL
        }
    );
    assert_eq!(r[1].access, ACC_READ | ACC_WRITE);
    assert_eq!((r[2].kind, r[2].major), (Kind::Block, None));
    assert_eq!((r[3].kind, r[3].access), (Kind::Char, ACC_ALL));
    let e = rules(&list(json!([{"allow": true, "access": "rx"}])))
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"rx\""), "{e}");
    assert!(rules(&list(json!([{"allow": true, "major": 5_000_000_000_i64}]))).is_err());
}

#[test]
fn v1_lines_in_config_order() {
    let p = v1_plan(&list(json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 136, "access": "rw"},
        {"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"},
        {"allow": true, "type": "a", "major": 7, "access": "r"}
    ])))
    .unwrap();
    let p: Vec<String> = p.iter().map(|(f, l)| format!("{f}:{l}")).collect();
    assert_eq!(
        p,
        [
            "devices.deny:a",
            "devices.deny:a",
            "devices.allow:c 1:3 rwm",
            "devices.allow:c 136:* rw",
            "devices.deny:c 1:3 w",
            "devices.allow:b 7:* r",
            "devices.allow:c 7:* r",
        ]
    );
}

#[test]
fn program_last_match_wins() {
    let mut l = list(json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
        {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "r"},
        {"allow": true, "type": "b", "major": 8, "access": "rwm"},
        {"allow": false, "type": "b", "major": 8, "minor": 1, "access": "w"}
    ]));
    l.extend(default_rules());
    let p = program(&rules(&l).unwrap());
    const C: i32 = DEV_CHAR;
    const B: i32 = DEV_BLOCK;
    assert!(eval(&p, C, ACC_READ, 1, 3));
    assert!(eval(&p, C, ACC_WRITE, 1, 3));
    assert!(eval(&p, C, ACC_READ, 1, 5));
    assert!(eval(&p, C, ACC_WRITE, 1, 9), "urandom from the defaults");
    assert!(!eval(&p, C, ACC_READ, 1, 4));
    assert!(!eval(&p, C, ACC_READ, 10, 200));
    assert!(
        eval(&p, C, ACC_MKNOD, 10, 200),
        "mknod of anything is a default"
    );
    assert!(eval(&p, B, ACC_READ, 8, 1));
    assert!(!eval(&p, B, ACC_WRITE, 8, 1), "the later deny wins");
    assert!(eval(&p, B, ACC_WRITE, 8, 2));
    assert!(eval(&p, C, ACC_READ, 136, 4));
    // With no defaults, /dev/zero (1:5) is read-only.
    let p = program(&rules(&l[..3]).unwrap());
    assert!(!eval(&p, C, ACC_WRITE, 1, 5));
    assert!(eval(&p, C, ACC_READ, 1, 5));
}

#[test]
fn program_shape() {
    // "deny all, allow c 1:3 rwm": prologue 6 + (type, major, minor, mov, exit) 5
    // + the deny-all rule that ends the program (mov, exit) 2.
    let p = program(
        &rules(&list(json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
        ])))
        .unwrap(),
    );
    assert_eq!(p.len(), 13);
    assert_eq!(
        p[6],
        Insn {
            code: JNE_K,
            regs: 2,
            off: 4,
            imm: DEV_CHAR
        }
    );
    assert_eq!(p.last().unwrap().code, EXIT);
    assert_eq!(
        p[p.len() - 2],
        Insn {
            code: ALU64_MOV_K,
            regs: 0,
            off: 0,
            imm: 0
        }
    );
    // Nothing after an allow-all rule, or the verifier would see dead code.
    let p = program(
        &rules(&list(
            json!([{"allow": false, "type": "c", "major": 1}, {"allow": true}]),
        ))
        .unwrap(),
    );
    assert_eq!(p.len(), 8);
    assert!(eval(&p, DEV_CHAR, ACC_READ, 1, 1));
    // An empty list denies everything.
    let p = program(&[]);
    assert_eq!(p.len(), 8);
    assert!(!eval(&p, DEV_BLOCK, ACC_READ, 8, 0));
}

#[test]
fn default_rules_are_valid() {
    let d = rules(&default_rules()).unwrap();
    assert_eq!(d.len(), 10);
    assert!(d.iter().all(|r| r.allow));
    assert!(d.contains(&Rule {
        allow: true,
        kind: Kind::Char,
        major: Some(1),
        minor: Some(3),
        access: ACC_ALL
    }));
}

#[test]
fn create_rules_order() {
    let config = list(json!([{"allow": false, "access": "rwm"}]));
    let devs: Vec<LinuxDevice> = serde_json::from_value(json!([
        {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}
    ]))
    .unwrap();
    let r = create_rules(Some(&config), &devs);
    assert_eq!(r.len(), 12);
    assert!(!r[0].allow());
    assert_eq!(r[1..11], default_rules()[..]);
    assert_eq!(r[11].to_string(), "c 10:229 rwm");
    let p = program(&rules(&r).unwrap());
    assert!(eval(&p, DEV_CHAR, ACC_READ | ACC_WRITE, 10, 229));
    assert!(eval(&p, DEV_CHAR, ACC_WRITE, 1, 3));
    assert!(!eval(&p, DEV_CHAR, ACC_READ, 10, 200));
    // No config rules: only the defaults and the devices.
    assert_eq!(create_rules(None, &[]).len(), 10);
}
