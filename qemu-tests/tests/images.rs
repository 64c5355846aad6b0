//! Apps run as Docker would run them, from an image made by a tool not written here:
//! buildah (Debian's) builds it from scratch with busybox and sets its Entrypoint, Cmd,
//! User (a name from the image's /etc/passwd, in a supplementary group), WorkingDir, Env,
//! StopSignal and ExposedPorts; on the node the app's output shows the right argv, `id` the
//! right uid, gid and groups, `pwd` the workdir, overrides work as `docker run`'s do, and
//! `app stop` sends the image's stop signal.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use qemu_tests::appnode::{powered_off, AppNode};
use qemu_tests::{disk, oci};
use serde_json::Value;

/// Builds the test image with buildah (vfs storage in `dir`) as an oci-archive.
fn buildah_image(dir: &Path) -> PathBuf {
    let store = |sub: &str| dir.join(sub).display().to_string();
    let (root, run) = (store("root"), store("run"));
    let bh = |args: &[&str]| -> String {
        let out = Command::new("buildah")
            .args([
                "--root",
                &root,
                "--runroot",
                &run,
                "--storage-driver",
                "vfs",
            ])
            .args(args)
            .output()
            .expect("buildah (Debian's buildah package)");
        assert!(
            out.status.success(),
            "buildah {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let ctr = bh(&["from", "scratch"]);
    let mnt = PathBuf::from(bh(&["mount", &ctr]));
    std::fs::create_dir_all(mnt.join("bin")).unwrap();
    std::fs::create_dir_all(mnt.join("etc")).unwrap();
    std::fs::copy(oci::BUSYBOX, mnt.join("bin/busybox")).unwrap();
    for applet in ["sh", "id", "pwd", "sleep", "echo"] {
        std::os::unix::fs::symlink("busybox", mnt.join("bin").join(applet)).unwrap();
    }
    std::fs::write(
        mnt.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nsvc:x:1234:1234:svc:/home/svc:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(
        mnt.join("etc/group"),
        "root:x:0:\nsvc:x:1234:\nextra:x:2000:svc\n",
    )
    .unwrap();
    bh(&[
        "config",
        "--entrypoint",
        r#"["/bin/sh","-c","echo argv: \"$0\" \"$@\"; id; echo pwd: $(pwd); echo greeting=$GREETING home=$HOME","entry"]"#,
        "--cmd",
        "first second",
        "--user",
        "svc",
        "--workingdir",
        "/srv/work",
        "--env",
        "GREETING=hi",
        "--stop-signal",
        "SIGUSR1",
        "--port",
        "8080/tcp",
        &ctr,
    ]);
    let archive = dir.join("bh.tar");
    bh(&[
        "commit",
        "--format",
        "oci",
        &ctr,
        &format!("oci-archive:{}", archive.display()),
    ]);
    archive
}

#[test]
fn an_image_built_by_buildah_runs_as_its_config_says() {
    let build = tempfile::tempdir().unwrap();
    let archive = buildah_image(build.path());
    let n = AppNode::new(
        r#"
I=/data/test/bh.tar
go() { n=$1; shift; $F ctl app run "$n" --source $I --cpu 0.25 --ram 32M --restart no "$@" > $R/$n.run 2>&1; settle "$n"; }
go img
go over -- again and more
go ent --entrypoint /bin/busybox -- id
go usr --user 0:0 --entrypoint /bin/busybox -- id
$F ctl app run stopper --source $I --cpu 0.25 --ram 32M --restart always --entrypoint /bin/sh -- -c 'trap "echo got-usr1; exit 0" USR1; echo waiting; while true; do sleep 1; done' > $R/stopper.run 2>&1
$B sleep 4
$F ctl app list > $R/list.json
$F ctl app stop stopper
gone stopper
$B cat /data/apps/stopper-0/output.log > $R/stopper.out
$F ctl shutdown
"#,
    );
    disk::put_host_files(&n.img, &[], &[(&archive, "/test/bh.tar")]);
    let mut vm = n
        .boot("")
        .timeout(Duration::from_secs(600))
        .spawn()
        .unwrap();
    powered_off(&mut vm);
    let out = |name: &str| -> String {
        let j: Value = n.json(&format!("{name}.json"));
        j["output"].as_str().unwrap_or_default().to_owned()
    };
    let img = out("img");
    for want in [
        "argv: entry first second",
        "uid=1234(svc) gid=1234(svc)",
        "2000(extra)",
        "pwd: /srv/work",
        "greeting=hi home=/home/svc",
    ] {
        assert!(img.contains(want), "{want:?} missing from {img:?}");
    }
    let over = out("over");
    assert!(over.contains("argv: entry again and more"), "{over:?}");
    let ent = out("ent");
    assert!(ent.contains("uid=1234(svc) gid=1234(svc)"), "{ent:?}");
    assert!(
        !ent.contains("argv:"),
        "the image's Cmd was dropped: {ent:?}"
    );
    let usr = out("usr");
    assert!(usr.contains("uid=0(root) gid=0(root)"), "{usr:?}");
    let list = n.json("list.json");
    let stopper = list["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "stopper")
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        stopper["exposed_ports"],
        serde_json::json!(["8080/tcp"]),
        "{list}"
    );
    let stopped = n.result("stopper.out");
    assert!(
        stopped.contains("got-usr1"),
        "the image's StopSignal: {stopped:?}"
    );
    assert!(
        vm.serial_log().contains("apps: stopper stopped"),
        "{}",
        vm.tail(30)
    );
}

#[test]
fn an_app_is_pulled_from_a_registry_the_guest_reaches_through_guestfwd() {
    let reg = qemu_tests::registry::Registry::start();
    let build = tempfile::tempdir().unwrap();
    oci::busybox_archive(build.path());
    reg.push(&build.path().join("layout"), "test", "team/busybox:1");
    let host = format!("{}:{}", qemu_tests::vm::GUEST_HOST, reg.port);
    let n = AppNode::new(&format!(
        r#"
$F ctl app run pulled --image {host}/team/busybox:1 --cpu 0.25 --ram 32M --restart no -- /bin/sh -c 'echo pulled-and-running' > $R/pulled.run 2>&1
settle pulled
$F ctl app list > $R/list.json
$F ctl app run nope --image {host}/team/busybox:nope --cpu 0.1 --ram 16M --restart no -- /bin/true > $R/nope.run 2>&1
settle nope
$F ctl shutdown
"#
    ));
    let registries = format!("[[registry]]\nhost = \"{host}\"\ninsecure = true\n");
    disk::put_file(&n.img, &["/etc"], "/etc/registries.toml", &registries);
    let mut vm = n
        .boot("")
        .guestfwd(reg.port)
        .timeout(Duration::from_secs(600))
        .spawn()
        .unwrap();
    powered_off(&mut vm);
    let pulled: Value = n.json("pulled.json");
    let out = pulled["output"].as_str().unwrap_or_default();
    assert!(
        out.contains("pulled-and-running"),
        "{pulled}\n{}",
        vm.tail(30)
    );
    assert!(
        vm.serial_log().contains("apps: pulled: importing image"),
        "{}",
        vm.tail(30)
    );
    let nope: Value = n.json("nope.json");
    let why = nope["app"]["error"].as_str().unwrap_or_default();
    assert!(
        why.contains("busybox:nope"),
        "the refused pull names the image: {nope}"
    );
}
