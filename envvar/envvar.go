// Package envvar is how every component of cloudsql-cache reads its configuration: each declares the
// variables it reads with their defaults (the lists the README and the Terraform tests are held to),
// and reads them through Lookup, so an unset or blank variable means the declared default everywhere.
package envvar

import "strings"

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
