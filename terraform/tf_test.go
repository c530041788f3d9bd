package terraform_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// This file runs terraform itself: `terraform test -json -verbose` on a scratch copy of the module, with
// the providers scripts/tfenv finds (the shared filesystem mirror, else the registry), and reads the
// plans it prints. Without terraform or its providers the tests fail: they never skip.

// mutation replaces Old by New in File of the scratch copy; Old must occur there.
type mutation struct{ File, Old, New string }

// tfResult is what one terraform test invocation reported.
type tfResult struct {
	Plans   []*tfPlan // one per run, in the order printed
	Diags   []tfDiag
	Status  map[string]string // run ("file/run") → pass, fail, error or skip
	Summary string            // the closing line
	schemas map[string]schemaBlock
}

type tfDiag struct{ Run, Severity, Summary, Detail string }

// tfPlan is the plan of one run: its resource changes, as Terraform's JSON plan format has them.
type tfPlan struct {
	Run     string // "tests/shapes.tftest.hcl/minimal"
	Changes []resourceChange
	schemas map[string]schemaBlock
}

type resourceChange struct {
	Address string `json:"address"`
	Mode    string `json:"mode"`
	Type    string `json:"type"`
	Change  struct {
		Actions []string       `json:"actions"`
		After   map[string]any `json:"after"`
	} `json:"change"`
}

// schemaBlock is a block of a provider's resource schema (`terraform providers schema -json`).
type schemaBlock struct {
	Attributes map[string]struct {
		Optional bool `json:"optional"`
		Required bool `json:"required"`
		Computed bool `json:"computed"`
	} `json:"attributes"`
	BlockTypes map[string]struct {
		NestingMode string      `json:"nesting_mode"`
		MaxItems    int         `json:"max_items"`
		Block       schemaBlock `json:"block"`
	} `json:"block_types"`
}

// resource returns the planned resource at address (nil if the plan has none).
func (p *tfPlan) resource(address string) *resourceChange {
	for i := range p.Changes {
		if p.Changes[i].Address == address {
			return &p.Changes[i]
		}
	}
	return nil
}

// schema returns the google provider's schema of resource type typ.
func (p *tfPlan) schema(typ string) (schemaBlock, bool) {
	b, ok := p.schemas[typ]
	return b, ok
}

// plan returns the plan of the run named run ("tests/shapes.tftest.hcl/minimal").
func (r *tfResult) plan(t testing.TB, run string) *tfPlan {
	t.Helper()
	for _, p := range r.Plans {
		if p.Run == run {
			return p
		}
	}
	t.Fatalf("terraform test printed no plan for %s (runs: %v)", run, r.Status)
	return nil
}

// failedAssertions returns the error messages of the assertions that failed.
func (r *tfResult) failedAssertions() []string {
	var out []string
	for _, d := range r.Diags {
		if d.Summary == "Test assertion failed" {
			out = append(out, strings.TrimSpace(d.Detail))
		}
	}
	return out
}

func (r *tfResult) errors() string {
	var b strings.Builder
	for _, d := range r.Diags {
		if d.Severity == "error" {
			fmt.Fprintf(&b, "%s: %s: %s\n", d.Run, d.Summary, d.Detail)
		}
	}
	return b.String()
}

// terraformBin is terraform's path.
func terraformBin() (string, error) {
	bin, err := exec.LookPath("terraform")
	if err != nil {
		return "", fmt.Errorf("terraform not found on PATH: install Terraform >= 1.11 (https://developer.hashicorp.com/terraform/install); these tests need it")
	}
	return bin, nil
}

var providerEnv = sync.OnceValues(func() ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("scripts/tfenv")
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("scripts/tfenv: %w\n%s", err, stderr.String())
	}
	env := []string{"TF_IN_AUTOMATION=1", "TF_INPUT=0", "CHECKPOINT_DISABLE=1"}
	for _, line := range strings.Split(string(out), "\n") {
		if kv, ok := strings.CutPrefix(strings.TrimSpace(line), "export "); ok {
			env = append(env, kv)
		}
	}
	return env, nil
})

// terraform runs terraform with args in dir, with the providers' environment (providerEnv: what
// scripts/tfenv prints).
func terraform(dir string, args ...string) (*exec.Cmd, error) {
	bin, err := terraformBin()
	if err != nil {
		return nil, err
	}
	env, err := providerEnv()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	return cmd, nil
}

// scratch copies the module's *.tf files and tests/ into a new directory under parent, applies the
// mutations, and runs terraform init there.
func scratch(parent string, mutations ...mutation) (string, error) {
	dir, err := os.MkdirTemp(parent, "module")
	if err != nil {
		return "", err
	}
	tfs, err := filepath.Glob("*.tf")
	if err != nil || len(tfs) == 0 {
		return "", fmt.Errorf("no *.tf files here (%v)", err)
	}
	copyFile := func(src string) error {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, src)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	}
	for _, f := range tfs {
		if err := copyFile(f); err != nil {
			return "", err
		}
	}
	err = filepath.WalkDir("tests", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return copyFile(p)
	})
	if err != nil {
		return "", err
	}
	for _, m := range mutations {
		p := filepath.Join(dir, m.File)
		b, err := os.ReadFile(p)
		if err != nil {
			return "", err
		}
		if !bytes.Contains(b, []byte(m.Old)) {
			return "", fmt.Errorf("mutation: %q is not in %s any more; update the mutation to the module's text", m.Old, m.File)
		}
		if err := os.WriteFile(p, bytes.Replace(b, []byte(m.Old), []byte(m.New), 1), 0o644); err != nil {
			return "", err
		}
	}
	cmd, err := terraform(dir, "init", "-backend=false", "-input=false", "-no-color")
	if err != nil {
		return "", err
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("terraform init could not install the providers (set TF_PROVIDER_MIRROR to a folder like shared/terraform-providers, or reach the registry): %w\n%s", err, out)
	}
	return dir, nil
}

// terraformTest runs `terraform test -json -verbose` in dir with args (e.g. -filter=...), and reads
// its messages. A failing test is reported in the result, not as an error.
func terraformTest(dir string, args ...string) (*tfResult, error) {
	cmd, err := terraform(dir, append([]string{"test", "-json", "-verbose", "-no-color"}, args...)...)
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// Read to the end or stopped: terraform must not be left blocked on a pipe nobody reads.
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	res := &tfResult{Status: map[string]string{}}
	sc := bufio.NewScanner(stdout)
	// With -verbose each plan carries the provider schemas: lines of several MB.
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	for sc.Scan() {
		var msg struct {
			Type     string          `json:"type"`
			Message  string          `json:"@message"`
			TestFile string          `json:"@testfile"`
			TestRun  string          `json:"@testrun"`
			Plan     json.RawMessage `json:"test_plan"`
			Run      struct {
				Progress string `json:"progress"`
				Status   string `json:"status"`
			} `json:"test_run"`
			Diagnostic *struct {
				Severity string `json:"severity"`
				Summary  string `json:"summary"`
				Detail   string `json:"detail"`
			} `json:"diagnostic"`
		}
		if err := json.Unmarshal(sc.Bytes(), &msg); err != nil {
			return nil, fmt.Errorf("terraform test -json printed a line that is not JSON: %w: %.200s", err, sc.Text())
		}
		run := msg.TestFile + "/" + msg.TestRun
		switch msg.Type {
		case "test_plan":
			var p struct {
				Changes []resourceChange `json:"resource_changes"`
				Schemas map[string]struct {
					Resources map[string]struct {
						Block schemaBlock `json:"block"`
					} `json:"resource_schemas"`
				} `json:"provider_schemas"`
			}
			if err := json.Unmarshal(msg.Plan, &p); err != nil {
				return nil, fmt.Errorf("%s: plan: %w", run, err)
			}
			if res.schemas == nil {
				res.schemas = map[string]schemaBlock{}
				for typ, s := range p.Schemas["registry.terraform.io/hashicorp/google"].Resources {
					res.schemas[typ] = s.Block
				}
			}
			res.Plans = append(res.Plans, &tfPlan{Run: run, Changes: p.Changes, schemas: res.schemas})
		case "test_run":
			if msg.Run.Progress == "complete" {
				res.Status[run] = msg.Run.Status
			}
		case "diagnostic":
			if msg.Diagnostic != nil {
				res.Diags = append(res.Diags, tfDiag{run, msg.Diagnostic.Severity, msg.Diagnostic.Summary, msg.Diagnostic.Detail})
			}
		case "test_summary":
			res.Summary = msg.Message
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading terraform test's output: %w", err)
	}
	if res.Summary == "" {
		return nil, fmt.Errorf("terraform test ended without a summary\n%s\n%s", stderr.String(), res.errors())
	}
	return res, nil
}

// sharedTemp holds what is computed once per test binary; TestMain removes it.
var sharedTemp string

// planned is the result of the property and shape suites on the module as it is, run once per test
// binary for the tests that read its plans.
var planned = sync.OnceValues(func() (*tfResult, error) {
	dir, err := scratch(sharedTemp)
	if err != nil {
		return nil, err
	}
	return terraformTest(dir, "-filter=tests/properties.tftest.hcl", "-filter=tests/shapes.tftest.hcl")
})

// passingPlans returns planned's result, which must have passed.
func passingPlans(t *testing.T) *tfResult {
	t.Helper()
	res, err := planned()
	if err != nil {
		t.Fatal(err)
	}
	for run, status := range res.Status {
		if status != "pass" {
			t.Fatalf("terraform test: %s: %s\n%s", run, status, res.errors())
		}
	}
	if len(res.Plans) == 0 {
		t.Fatalf("terraform test printed no plan: %s", res.Summary)
	}
	return res
}

func TestMain(m *testing.M) {
	var err error
	sharedTemp, err = os.MkdirTemp("", "terraform-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(sharedTemp)
	os.Exit(code)
}
