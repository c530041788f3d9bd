// Package repocheck holds the tests that keep the repository to its written rules: every package
// imports only what its row of the README's folder table allows, and every package has a row; the read
// path pulls no dependency beyond go-redis, the MySQL driver, OpenTelemetry's metric API and x/sync;
// `make fuzz` runs every fuzz target; the README shows readcache's compiled example as it is.
package repocheck
