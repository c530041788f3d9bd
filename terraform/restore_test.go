package terraform_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The restore runbook, scripts/restore, against stand-ins for terraform, gcloud and curl (it cannot
// apply to Google Cloud here): the stand-in terraform keeps the applied values of version_epoch and
// debezium_instances and logs every apply; the stand-in Monitoring API reports a backlog that drains on
// the second read. What is tested is the order, which is the runbook's whole point: Debezium stopped at
// the applied epoch, the backlog drained, the function on the new epoch with Debezium still stopped,
// then Debezium started; and every step that would break it refused.
func TestRestoreRunbook(t *testing.T) {
	bin, state := t.TempDir(), t.TempDir()
	fake := map[string]string{
		"terraform": `#!/usr/bin/env bash
set -eu
st=$FAKE_STATE
shift # -chdir=…
case $1 in
output)
  case "${@: -1}" in
  version_epoch) cat "$st/epoch" ;;
  debezium_instances) cat "$st/instances" ;;
  push_subscriptions) echo '{"shop.orders":"projects/my-project/subscriptions/cloudsql-cache.shop.orders.apply"}' ;;
  esac ;;
console)
  read -r expr
  case $expr in
  var.version_epoch) cat "$st/config_epoch" ;;
  var.debezium_instances) echo 1 ;;
  esac ;;
apply)
  epoch=$(cat "$st/config_epoch") instances=1
  shift
  while [ $# -gt 0 ]; do
    case $1 in
    -var) shift; case $1 in version_epoch=*) epoch=${1#*=} ;; debezium_instances=*) instances=${1#*=} ;; esac ;;
    esac
    shift
  done
  echo "$epoch" >"$st/epoch"; echo "$instances" >"$st/instances"
  echo "apply epoch=$epoch instances=$instances" >>"$st/log" ;;
esac
`,
		"gcloud": "#!/usr/bin/env bash\necho token\n",
		"curl": `#!/usr/bin/env bash
n=$(cat "$FAKE_STATE/reads" 2>/dev/null || echo 0); echo $((n + 1)) >"$FAKE_STATE/reads"
v=0; [ "$n" = 0 ] && v=5
echo "read backlog=$v" >>"$FAKE_STATE/log"
printf '{"timeSeries":[{"resource":{"labels":{"subscription_id":"cloudsql-cache.shop.orders.apply"}},"points":[{"interval":{"endTime":"%s"},"value":{"int64Value":"%s"}}]}]}' "$(date -u -d '+5 seconds' +%Y-%m-%dT%H:%M:%SZ)" "$v"
`,
	}
	for name, src := range fake {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(src), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	set := func(name, v string) {
		if err := os.WriteFile(filepath.Join(state, name), []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set("epoch", "0")
	set("instances", "1")
	set("config_epoch", "0")
	restore := func(args ...string) (string, error) {
		cmd := exec.Command("scripts/restore", append(args, "-var-file=prod.tfvars")...)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "FAKE_STATE="+state,
			"RESTORE_POLL=0", "RESTORE_SAMPLE_AFTER=0", "TF_DIR="+state)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	log := func() string {
		b, _ := os.ReadFile(filepath.Join(state, "log"))
		return strings.TrimSpace(string(b))
	}
	step := func(name string, args []string, wantErr string, wantLog string) {
		t.Helper()
		out, err := restore(args...)
		switch {
		case wantErr == "" && err != nil:
			t.Fatalf("%s: %v\n%s", name, err, out)
		case wantErr != "" && (err == nil || !strings.Contains(out, wantErr)):
			t.Fatalf("%s: want a refusal saying %q, got %v\n%s", name, wantErr, err, out)
		}
		if got := log(); got != wantLog {
			t.Fatalf("%s: terraform and Monitoring saw\n%s\nwant\n%s\n(output:\n%s)", name, got, wantLog, out)
		}
	}

	set("config_epoch", "1")
	step("start before stop", []string{"start"}, "run restore stop first", "")
	step("stop", []string{"stop"}, "", "apply epoch=0 instances=0\nread backlog=5\nread backlog=0")
	stopped := "apply epoch=0 instances=0\nread backlog=5\nread backlog=0"
	set("config_epoch", "2")
	step("start two epochs up", []string{"start"}, "set it to 1", stopped)
	set("config_epoch", "1")
	step("start", []string{"start"}, "", stopped+"\napply epoch=1 instances=0\napply epoch=1 instances=1")
	step("start again", []string{"start"}, "nothing to start", stopped+"\napply epoch=1 instances=0\napply epoch=1 instances=1")
}
