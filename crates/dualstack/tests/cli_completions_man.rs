//! `dualstack completions SHELL` and `dualstack man [--out DIR]`, generated from the clap
//! definitions: every subcommand is covered, bash really completes with the script, and every
//! man page renders without a groff warning.

// Test helpers may panic on fixtures they build themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn dualstack(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dualstack"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The subcommands `dualstack --help` lists (`help` aside), so the checks follow the CLI.
fn subcommands() -> Vec<String> {
    let help = stdout(&dualstack(&["--help"]));
    let names: Vec<String> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 10, "{help}");
    names
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dualstack-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn tool_exists(name: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// What bash's completion offers for `words` (the last one being completed).
fn bash_complete(script: &Path, words: &[&str]) -> Vec<String> {
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let current = words.len() - 1;
    let previous = if current == 0 { "" } else { words[current - 1] };
    let program = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={current}; \
         _dualstack dualstack '{}' '{previous}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words[current],
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &program])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completion_completes_every_subcommand_and_their_flags() {
    let script = stdout(&dualstack(&["completions", "bash"]));
    let dir = temp_dir("completions");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("dualstack.bash");
    std::fs::write(&path, &script).unwrap();

    if !tool_exists("bash") {
        eprintln!("skipping the bash checks: bash is not installed");
        return;
    }
    let syntax = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        syntax.status.success(),
        "{}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let offered = bash_complete(&path, &["dualstack", ""]);
    for name in subcommands() {
        assert!(offered.contains(&name), "{name} not offered: {offered:?}");
    }
    assert_eq!(bash_complete(&path, &["dualstack", "kl"]), ["klipper"]);
    assert_eq!(
        bash_complete(&path, &["dualstack", "agent", "--snap"]),
        ["--snapshot"]
    );
    assert!(
        bash_complete(&path, &["dualstack", "lb", "explain", "--"])
            .contains(&"--default-class".to_string())
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn zsh_and_fish_scripts_name_every_subcommand() {
    let zsh = stdout(&dualstack(&["completions", "zsh"]));
    assert!(zsh.starts_with("#compdef dualstack"), "{zsh:.200}");
    let fish = stdout(&dualstack(&["completions", "fish"]));
    for name in subcommands() {
        assert!(zsh.contains(&format!("'{name}:")), "zsh: {name}");
        assert!(
            fish.contains(&format!("-a \"{name}\"")),
            "fish: {name} missing"
        );
    }
    for (shell, tool) in [(&zsh, "zsh"), (&fish, "fish")] {
        if !tool_exists(tool) {
            eprintln!("not syntax-checking the {tool} script: {tool} is not installed");
            continue;
        }
        let dir = temp_dir(tool);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("dualstack");
        std::fs::write(&path, shell).unwrap();
        let out = Command::new(tool).arg("-n").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{tool} -n: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn an_unknown_shell_is_bad_input() {
    let out = dualstack(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid value 'tcsh'"), "{stderr}");
    assert!(
        stderr.contains("bash, elvish, fish, powershell, zsh"),
        "{stderr}"
    );
}

#[test]
fn man_prints_dualstack_1_and_writes_a_page_per_command() {
    let page = stdout(&dualstack(&["man"]));
    assert!(page.contains(".TH dualstack 1"), "{page:.300}");
    for name in subcommands() {
        assert!(page.contains(&format!("dualstack\\-{name}(1)")), "{name}");
    }

    let dir = temp_dir("man").join("man1");
    let out = stdout(&dualstack(&["man", "--out", dir.to_str().unwrap()]));
    assert!(out.contains("man pages written to"), "{out}");
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    for name in subcommands() {
        assert!(
            pages.contains(&format!("dualstack-{name}.1")),
            "{name}: {pages:?}"
        );
    }
    for nested in [
        "dualstack-lb-explain.1",
        "dualstack-doctor-node.1",
        "dualstack-ip-info.1",
    ] {
        assert!(pages.contains(&nested.to_string()), "{nested}: {pages:?}");
    }
    let agent = std::fs::read_to_string(dir.join("dualstack-agent.1")).unwrap();
    assert!(agent.contains("\\-\\-snapshot"), "flags are documented");

    if tool_exists("groff") {
        for page in &pages {
            let out = Command::new("groff")
                .args(["-k", "-man", "-Tutf8", "-z", "-ww"])
                .arg(dir.join(page))
                .output()
                .unwrap();
            assert!(out.status.success(), "{page}");
            assert_eq!(
                String::from_utf8_lossy(&out.stderr),
                "",
                "{page} renders with warnings"
            );
        }
    } else {
        eprintln!("not rendering the pages: groff is not installed");
    }
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[test]
fn man_into_an_unwritable_place_names_the_directory() {
    let file = temp_dir("man-file");
    std::fs::write(&file, "not a directory").unwrap();
    let out = dualstack(&["man", "--out", file.to_str().unwrap()]);
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("--out {}", file.display())),
        "{stderr}"
    );
    let _ = std::fs::remove_file(file);
}

#[test]
fn the_readme_documents_the_install_commands_these_tests_run() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    for command in [
        "dualstack completions bash | sudo tee /usr/share/bash-completion/completions/dualstack",
        "sudo dualstack man --out /usr/local/share/man/man1",
    ] {
        assert!(readme.contains(command), "README lacks {command:?}");
    }
}
