// Package terraform_test checks the Terraform module with what terraform test cannot do by itself:
// plan_test.go holds every planned resource to the module-wide properties and breaks the module to prove
// that the terraform test assertions fail; monitoring_test.go decodes the dashboard and the alert
// policies with Google's API types and checks every query against the metrics the function exports;
// config_test.go evaluates the function's and Debezium's environment against their own configuration;
// docs_test.go keeps README.md's inputs and outputs tables generated from the code. The property
// assertions themselves are in tests/*.tftest.hcl (terraform test, run by make terraform-check).
//
// This file reads the module's HCL for config_test.go.
package terraform_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// module is the parsed root module: the top-level blocks of every *.tf file in the directory.
type module struct {
	blocks []*hclsyntax.Block
}

// readModule returns the *.tf files of the root module (this directory), by file name.
func readModule(t *testing.T) map[string]string {
	t.Helper()
	paths, err := filepath.Glob("*.tf")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no *.tf files in the terraform directory (err %v)", err)
	}
	srcs := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		srcs[p] = string(b)
	}
	return srcs
}

func parseModule(t *testing.T, srcs map[string]string) *module {
	t.Helper()
	names := make([]string, 0, len(srcs))
	for n := range srcs {
		names = append(names, n)
	}
	sort.Strings(names)
	p := hclparse.NewParser()
	m := &module{}
	for _, n := range names {
		f, diags := p.ParseHCL([]byte(srcs[n]), n)
		if diags.HasErrors() {
			t.Fatalf("%s: %s", n, diags.Error())
		}
		body := f.Body.(*hclsyntax.Body)
		m.blocks = append(m.blocks, body.Blocks...)
	}
	return m
}

var loaded *module

// load parses the module once per test binary.
func load(t *testing.T) *module {
	t.Helper()
	if loaded == nil {
		loaded = parseModule(t, readModule(t))
	}
	return loaded
}

// mutate parses the module with old replaced by new in file; old must occur there.
func mutate(t *testing.T, file, old, new string) *module {
	t.Helper()
	srcs := readModule(t)
	src, ok := srcs[file]
	if !ok || !strings.Contains(src, old) {
		t.Fatalf("mutation: %q not found in %s; update the mutation to the module's current text", old, file)
	}
	srcs[file] = strings.Replace(src, old, new, 1)
	return parseModule(t, srcs)
}

// resources returns the resource blocks of type typ ("google_pubsub_subscription").
func (m *module) resources(typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range m.blocks {
		if b.Type == "resource" && len(b.Labels) == 2 && b.Labels[0] == typ {
			out = append(out, b)
		}
	}
	return out
}

func (m *module) resource(typ, name string) *hclsyntax.Block {
	for _, b := range m.resources(typ) {
		if b.Labels[1] == name {
			return b
		}
	}
	return nil
}

// local returns the expression of local value name.
func (m *module) local(name string) hclsyntax.Expression {
	for _, b := range m.blocks {
		if b.Type == "locals" {
			if a, ok := b.Body.Attributes[name]; ok {
				return a.Expr
			}
		}
	}
	return nil
}

// children returns the nested blocks of type typ.
func children(b *hclsyntax.Block, typ string) []*hclsyntax.Block {
	if b == nil {
		return nil
	}
	var out []*hclsyntax.Block
	for _, c := range b.Body.Blocks {
		if c.Type == typ {
			out = append(out, c)
		}
	}
	return out
}

// child follows a path of nested block types, taking the first block at each step.
func child(b *hclsyntax.Block, path ...string) *hclsyntax.Block {
	for _, typ := range path {
		cs := children(b, typ)
		if len(cs) == 0 {
			return nil
		}
		b = cs[0]
	}
	return b
}

func attr(b *hclsyntax.Block, name string) hclsyntax.Expression {
	if b == nil {
		return nil
	}
	if a, ok := b.Body.Attributes[name]; ok {
		return a.Expr
	}
	return nil
}

// literal evaluates expr without any variable or function: only literal values succeed.
func literal(expr hclsyntax.Expression) (cty.Value, bool) {
	if expr == nil {
		return cty.NilVal, false
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() || !v.IsWhollyKnown() || v.IsNull() {
		return cty.NilVal, false
	}
	return v, true
}

func literalString(expr hclsyntax.Expression) (string, bool) {
	v, ok := literal(expr)
	if !ok || v.Type() != cty.String {
		return "", false
	}
	return v.AsString(), true
}

// refs renders the references of expr as dotted paths: "google_service_account.push.email",
// "var.region", "local.function_env".
func refs(expr hclsyntax.Expression) []string {
	if expr == nil {
		return nil
	}
	var out []string
	for _, tr := range expr.Variables() {
		var sb strings.Builder
		sb.WriteString(tr.RootName())
		for _, step := range tr[1:] {
			if a, ok := step.(hcl.TraverseAttr); ok {
				sb.WriteString("." + a.Name)
			}
		}
		out = append(out, sb.String())
	}
	return out
}

// refersTo reports whether expr references a path starting with prefix.
func refersTo(expr hclsyntax.Expression, prefix string) bool {
	for _, r := range refs(expr) {
		if r == prefix || strings.HasPrefix(r, prefix+".") {
			return true
		}
	}
	return false
}

// refTo returns the name of the resource of type typ that expr references ("" if none).
func refTo(expr hclsyntax.Expression, typ string) string {
	for _, r := range refs(expr) {
		p := strings.Split(r, ".")
		if len(p) >= 2 && p[0] == typ {
			return p[1]
		}
	}
	return ""
}
