//! An app's `--disk` is enforced on the image: a container that writes past it gets
//! EDQUOT ("Disk quota exceeded") while another app on the node writes what it needs, and
//! `ctl app list` shows each app's disk used.

use std::time::Duration;

use qemu_tests::appnode::{field, powered_off, AppNode};

#[test]
fn writing_past_the_disk_quota_fails_with_edquot_and_other_apps_write_on() {
    let n = AppNode::new(
        r#"
run fill --cpu 0.25 --ram 32M --disk 8M --restart no -- /bin/sh -c 'dd if=/dev/zero of=/big bs=1M count=20; echo dd=$?'
settle fill
run calm --cpu 0.1 --ram 16M --disk 16M --restart no -- /bin/sh -c 'dd if=/dev/zero of=/small bs=1M count=4; echo calm_dd=$?'
settle calm
$F ctl app list > $R/list.json
$F ctl shutdown
"#,
    );
    let mut vm = n
        .boot("")
        .timeout(Duration::from_secs(600))
        .spawn()
        .unwrap();
    powered_off(&mut vm);
    let fill = n.json("fill.json");
    let out = fill["output"].as_str().unwrap_or_default();
    assert!(
        out.contains("Disk quota exceeded"),
        "{out:?}\n{}",
        vm.tail(30)
    );
    assert_eq!(field(out, "dd"), Some(1), "{out:?}");
    let calm = n.json("calm.json");
    let out = calm["output"].as_str().unwrap_or_default();
    assert_eq!(field(out, "calm_dd"), Some(0), "{out:?}");
    let list = n.json("list.json");
    let used = |name: &str| {
        list["apps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .and_then(|a| a["disk_used"].as_u64())
            .unwrap_or_else(|| panic!("no disk_used for {name}: {list}"))
    };
    let fill_used = used("fill");
    assert!(
        (7 << 20..=8 << 20).contains(&fill_used),
        "fill used {fill_used} bytes of its 8 MiB"
    );
    assert!(used("calm") >= 4 << 20);
}
