// Package envvar is how every component of cloudsql-cache reads its configuration: each declares the
// variables it reads with their defaults (the lists the README and the Terraform tests are held to),
// reads them through Lookup, so an unset or blank variable means the declared default everywhere, and
// reports every problem at once through Problems.
package envvar

import (
	"errors"
	"fmt"
	"strings"
)

// Var is one environment variable a component reads.
type Var struct{ Name, Default, Help string }

// Lookup returns a reader of the variables in vars: the trimmed value from getenv, or the variable's
// declared default when it is unset or blank ("" for a name not in vars).
func Lookup(vars []Var, getenv func(string) string) func(name string) string {
	return func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		for _, v := range vars {
			if v.Name == name {
				return v.Default
			}
		}
		return ""
	}
}

// Problems collects what is wrong with a configuration, so that a reader reports every problem at
// once instead of one per start. The zero value is ready to use.
type Problems struct{ errs []error }

// Add records a problem with the variable name: "NAME: <what is wrong and how to fix it>".
func (p *Problems) Add(name, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

// AddErr records err as it is (nil is ignored): a problem that already names its variable, such as
// another reader's Err.
func (p *Problems) AddErr(err error) {
	if err != nil {
		p.errs = append(p.errs, err)
	}
}

// Err is every problem recorded, joined (errors.Join: one per line), or nil when there is none.
func (p *Problems) Err() error { return errors.Join(p.errs...) }
