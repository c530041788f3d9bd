// Package terraform_test checks the Terraform root module without Terraform: providers cannot be
// downloaded on the machines that run `make test`, so `terraform validate` is not available. The tests
// parse the HCL with hashicorp/hcl and hold the configuration to the properties that matter (ordered,
// authenticated delivery; dead letters; private networking; Redis AUTH and TLS; no public invocation;
// no basic roles; the function's environment). Each check is also run against a mutated copy of the
// module to prove it fails when its property is violated.
package terraform_test

import (
	"fmt"
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
	bodies []*hclsyntax.Body
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
		m.bodies = append(m.bodies, body)
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

// allResources returns every resource block.
func (m *module) allResources() []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range m.blocks {
		if b.Type == "resource" && len(b.Labels) == 2 {
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

// variableDefault returns the literal default of variable name.
func (m *module) variableDefault(name string) (cty.Value, bool) {
	for _, b := range m.blocks {
		if b.Type == "variable" && len(b.Labels) == 1 && b.Labels[0] == name {
			if a, ok := b.Body.Attributes["default"]; ok {
				return literal(a.Expr)
			}
		}
	}
	return cty.NilVal, false
}

func addr(b *hclsyntax.Block) string { return strings.Join(b.Labels, ".") }

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

func literalBool(expr hclsyntax.Expression) (bool, bool) {
	v, ok := literal(expr)
	if !ok || v.Type() != cty.Bool {
		return false, false
	}
	return v.True(), true
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

// stringLiterals returns every literal string in the module (attribute values, list elements, template
// parts), with where it is.
func (m *module) stringLiterals() map[string][]string {
	out := map[string][]string{}
	for _, body := range m.bodies {
		hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
			if lit, ok := n.(*hclsyntax.LiteralValueExpr); ok && lit.Val.Type() == cty.String && lit.Val.IsKnown() && !lit.Val.IsNull() {
				r := lit.Range()
				out[lit.Val.AsString()] = append(out[lit.Val.AsString()], fmt.Sprintf("%s:%d", r.Filename, r.Start.Line))
			}
			return nil
		})
	}
	return out
}

// check is one property of the module; it returns the violations it finds.
type check func(m *module) []string

func expectNone(t *testing.T, name string, c check) {
	t.Helper()
	if v := c(load(t)); len(v) > 0 {
		t.Errorf("%s:\n  %s", name, strings.Join(v, "\n  "))
	}
}

// expectViolation runs c on a mutated module and requires it to fail.
func expectViolation(t *testing.T, c check, file, old, new string) {
	t.Helper()
	if v := c(mutate(t, file, old, new)); len(v) == 0 {
		t.Errorf("mutating %s (%q -> %q) was not detected", file, old, new)
	}
}
