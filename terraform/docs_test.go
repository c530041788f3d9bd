package terraform_test

import (
	"flag"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// README.md's Inputs and Outputs tables are generated from variables.tf and outputs.tf, in the layout
// terraform-docs writes between the same markers (terraform-docs itself is not installable here).

var update = flag.Bool("update", false, "rewrite README.md's generated Inputs and Outputs tables")

const (
	docsBegin = "<!-- BEGIN_TF_DOCS -->"
	docsEnd   = "<!-- END_TF_DOCS -->"
)

// docsTables renders the Inputs (required first, then by name) and Outputs (by name) tables.
func docsTables(t *testing.T) string {
	t.Helper()
	type input struct{ name, desc, typ, def string }
	var inputs []input
	type output struct{ name, desc string }
	var outputs []output
	for _, file := range []string{"variables.tf", "outputs.tf"} {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := hclparse.NewParser().ParseHCL(src, file)
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		text := func(e hclsyntax.Expression) string {
			r := e.Range()
			return strings.Join(strings.Fields(string(src[r.Start.Byte:r.End.Byte])), " ")
		}
		for _, b := range f.Body.(*hclsyntax.Body).Blocks {
			desc := ""
			if a, ok := b.Body.Attributes["description"]; ok {
				v, diags := a.Expr.Value(nil)
				if diags.HasErrors() {
					t.Fatalf("%s %s: the description must be a literal string", file, b.Labels[0])
				}
				desc = v.AsString()
			}
			if desc == "" {
				t.Errorf("%s %s has no description", b.Type, b.Labels[0])
			}
			switch b.Type {
			case "variable":
				in := input{name: b.Labels[0], desc: desc, typ: "any", def: "n/a"}
				if a, ok := b.Body.Attributes["type"]; ok {
					in.typ = text(a.Expr)
				}
				if a, ok := b.Body.Attributes["default"]; ok {
					in.def = "`" + text(a.Expr) + "`"
				}
				inputs = append(inputs, in)
			case "output":
				outputs = append(outputs, output{b.Labels[0], desc})
			}
		}
	}
	sort.Slice(inputs, func(i, j int) bool {
		ri, rj := inputs[i].def == "n/a", inputs[j].def == "n/a"
		if ri != rj {
			return ri
		}
		return inputs[i].name < inputs[j].name
	})
	sort.Slice(outputs, func(i, j int) bool { return outputs[i].name < outputs[j].name })
	// Table cells: no pipes or line breaks, and <placeholders> shown rather than taken for HTML.
	cell := strings.NewReplacer("|", `\|`, "\n", " ", "<", "&lt;", ">", "&gt;").Replace
	var b strings.Builder
	b.WriteString(docsBegin + "\n<!-- Generated from variables.tf and outputs.tf: go test ./terraform -run TestREADMEDocumentsEveryInputAndOutput -update -->\n")
	b.WriteString("## Inputs\n\n| Name | Description | Type | Default | Required |\n|------|-------------|------|---------|:--------:|\n")
	for _, in := range inputs {
		req := "no"
		if in.def == "n/a" {
			req = "yes"
		}
		fmt.Fprintf(&b, "| %s | %s | `%s` | %s | %s |\n", in.name, cell(in.desc), cell(in.typ), cell(in.def), req)
	}
	b.WriteString("\n## Outputs\n\n| Name | Description |\n|------|-------------|\n")
	for _, o := range outputs {
		fmt.Fprintf(&b, "| %s | %s |\n", o.name, cell(o.desc))
	}
	b.WriteString(docsEnd)
	return b.String()
}

func TestREADMEDocumentsEveryInputAndOutput(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)` + regexp.QuoteMeta(docsBegin) + `.*?` + regexp.QuoteMeta(docsEnd))
	if !block.Match(readme) {
		t.Fatalf("README.md has no %s ... %s block for the generated tables", docsBegin, docsEnd)
	}
	want := docsTables(t)
	got := block.Find(readme)
	if string(got) == want {
		return
	}
	if *update {
		if err := os.WriteFile("README.md", block.ReplaceAll(readme, []byte(strings.ReplaceAll(want, "$", "$$"))), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("README.md: Inputs and Outputs tables rewritten")
		return
	}
	t.Errorf("README.md's Inputs and Outputs tables are not those of variables.tf and outputs.tf; regenerate them:\n  go test ./terraform -run TestREADMEDocumentsEveryInputAndOutput -update")
}

// Every validation's message names its input, so a refused plan says which input to fix.
func TestValidationMessagesNameTheirInput(t *testing.T) {
	m := load(t)
	n := 0
	for _, b := range m.blocks {
		if b.Type != "variable" {
			continue
		}
		for _, v := range children(b, "validation") {
			n++
			msg := attr(v, "error_message")
			tmpl, ok := msg.(*hclsyntax.TemplateExpr)
			if !ok || len(tmpl.Parts) == 0 {
				t.Errorf("variable %s: error_message must be a string", b.Labels[0])
				continue
			}
			lead, ok := literalString(tmpl.Parts[0])
			if !ok || !strings.HasPrefix(lead, b.Labels[0]+" ") {
				t.Errorf("variable %s: error_message must start with the input's name: %q", b.Labels[0], lead)
			}
			if !refersTo(msg, "var."+b.Labels[0]) {
				t.Errorf("variable %s: error_message must show the value given (${var.%s} or jsonencode of it)", b.Labels[0], b.Labels[0])
			}
		}
	}
	if n < 40 {
		t.Errorf("found %d validations; the walk no longer finds them", n)
	}
}

// The build command README.md's Deployment gives is cloudbuild.yaml's own (its header), flag for flag:
// the same service account, source bucket, project, region and substitutions (README's first build
// adds _DEPLOY=false).
func TestBuildCommandAgreesWithCloudbuild(t *testing.T) {
	flags := func(file, text string) map[string]string {
		i := strings.Index(text, "gcloud builds submit")
		if i < 0 {
			t.Fatalf("%s has no gcloud builds submit command", file)
		}
		cmd := text[i:]
		// The command runs to the first line that does not end with a backslash.
		var lines []string
		for _, l := range strings.Split(cmd, "\n") {
			l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "#"))
			lines = append(lines, strings.TrimSuffix(l, "\\"))
			if !strings.HasSuffix(l, "\\") {
				break
			}
		}
		out := map[string]string{}
		f := strings.Fields(strings.Join(lines, " "))
		for j := 0; j < len(f); j++ {
			if strings.HasPrefix(f[j], "--") && j+1 < len(f) {
				out[f[j]] = f[j+1]
				j++
			}
		}
		subs := map[string]string{}
		for _, kv := range strings.Split(out["--substitutions"], ",") {
			k, v, _ := strings.Cut(kv, "=")
			subs[k] = v
		}
		delete(out, "--substitutions")
		delete(subs, "_DEPLOY")
		for k, v := range subs {
			out["sub "+k] = v
		}
		return out
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	cb, err := os.ReadFile("../cloudbuild.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dep := string(readme)
	dep = dep[strings.Index(dep, "## Deployment"):]
	r, c := flags("README.md", dep), flags("cloudbuild.yaml", string(cb))
	if fmt.Sprint(r) != fmt.Sprint(c) {
		t.Errorf("README.md's build command and cloudbuild.yaml's header differ:\n README:     %v\n cloudbuild: %v", r, c)
	}
	for _, k := range []string{"--service-account", "--gcs-source-staging-dir", "--region", "--project", "sub _REGION", "sub _TAG"} {
		if r[k] == "" {
			t.Errorf("the build command sets no %s", k)
		}
	}
}
