package debeziumserver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Effective is the configuration the server runs with, as MicroProfile Config resolves it: the
// shipped template (plus what the entry point appends), under the local overrides and
// Config.Properties, with every ${NAME} and ${NAME:default} expanded from the entry point's
// environment. Everything derived from the configuration (Topics, the state tables) is read from here,
// so a change to debezium-server/application.properties.tmpl is the only edit it needs.
func (c Config) Effective() (map[string]string, error) {
	if c.ConfigDir == "" {
		return nil, errors.New("debeziumserver: ConfigDir is not set")
	}
	tmpl, err := os.ReadFile(filepath.Join(c.ConfigDir, "application.properties.tmpl"))
	if err != nil {
		return nil, fmt.Errorf("debeziumserver: the shipped configuration: %w", err)
	}
	raw, err := parseProperties(string(tmpl))
	if err != nil {
		return nil, fmt.Errorf("debeziumserver: application.properties.tmpl: %w", err)
	}
	env, err := c.environment()
	if err != nil {
		return nil, err
	}
	vars := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	if vars["COLUMN_EXCLUDE_LIST"] != "" { // appended by entrypoint.sh
		raw["debezium.source.column.exclude.list"] = "${COLUMN_EXCLUDE_LIST}"
	}
	var errs []error
	props := map[string]string{}
	for k, v := range raw {
		x, err := expand(v, vars)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
		props[k] = x
	}
	for _, o := range Overrides(c) {
		props[o.Property] = o.Value
	}
	for k, v := range c.Properties {
		props[k] = v
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("debeziumserver: %w", errors.Join(errs...))
	}
	return props, nil
}

// parseProperties reads the key=value lines of a properties file; # and ! start comments; values are
// unescaped as java.util.Properties does (\\ is a backslash). Line continuations and escaped keys,
// which the template does not use, are refused rather than misread.
func parseProperties(text string) (map[string]string, error) {
	props := map[string]string{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			return nil, fmt.Errorf("line %d: a continuation line, which this reader does not support", i+1)
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.ContainsAny(k, ` :\`) {
			return nil, fmt.Errorf("line %d: not key=value: %q", i+1, line)
		}
		u, err := unescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		props[strings.TrimSpace(k)] = u
	}
	return props, nil
}

// unescape resolves a properties value's escapes: \t, \n, \r, \f, \uXXXX, and \ before any other
// character stands for that character.
func unescape(v string) (string, error) {
	if !strings.Contains(v, `\`) {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '\\' {
			b.WriteByte(v[i])
			continue
		}
		i++
		if i == len(v) {
			return "", errors.New("a value ends in a lone backslash")
		}
		switch c := v[i]; c {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			if i+5 > len(v) {
				return "", fmt.Errorf("a short \\u escape in %q", v)
			}
			r, err := strconv.ParseUint(v[i+1:i+5], 16, 16)
			if err != nil {
				return "", fmt.Errorf("a bad \\u escape in %q", v)
			}
			b.WriteRune(rune(r))
			i += 4
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

var expression = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}`)

// expand replaces ${NAME} and ${NAME:default} with NAME's value in vars (MicroProfile Config expressions
// without nesting, which is all the template uses).
func expand(v string, vars map[string]string) (string, error) {
	var missing []string
	out := expression.ReplaceAllStringFunc(v, func(m string) string {
		sub := expression.FindStringSubmatch(m)
		if x, ok := vars[sub[1]]; ok && x != "" {
			return x
		}
		if strings.Contains(m, ":") {
			return sub[2]
		}
		missing = append(missing, sub[1])
		return ""
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("%s is not set", strings.Join(missing, ", "))
	}
	return out, nil
}

// Topics are the topic ids Debezium publishes to with this configuration, read from Effective:
// <topic.prefix>.<db>.<table> per captured table; the heartbeat topic <topic.heartbeat.prefix>.<topic.prefix>
// when heartbeat.interval.ms is above 0; the schema-change topic <topic.prefix> when
// include.schema.changes is on; and <topic.prefix>.<topic.transaction> when provide.transaction.metadata
// is on; less the topics a Filter transform with a TopicNameMatches predicate drops (the shipped
// configuration drops the transaction topic's BEGIN/END records, and Terraform creates no topic for
// it: a broken filter then fails here as it would there). Debezium's defaults apply where a property
// is not set. They must exist before it starts: the sink does not create topics, and a publish to a
// missing one fails the batch and stops the server. (Other transforms that rename or drop topics are
// not followed: a topic created and never used is harmless.)
func (c Config) Topics() ([]string, error) {
	p, err := c.Effective()
	if err != nil {
		return nil, err
	}
	get := func(key, def string) string {
		if v, ok := p["debezium.source."+key]; ok {
			return v
		}
		return def
	}
	prefix := get("topic.prefix", "")
	if prefix == "" {
		return nil, errors.New("debeziumserver: topic.prefix is empty")
	}
	delim := get("topic.delimiter", ".")
	topics := make([]string, 0, len(c.Tables)+3)
	for _, t := range c.Tables {
		db, table, _ := strings.Cut(t, ".")
		topics = append(topics, prefix+delim+db+delim+table)
	}
	if hb, err := strconv.ParseInt(get("heartbeat.interval.ms", "0"), 10, 64); err != nil {
		return nil, fmt.Errorf("debeziumserver: heartbeat.interval.ms: %w", err)
	} else if hb > 0 {
		topics = append(topics, get("topic.heartbeat.prefix", "__debezium-heartbeat")+delim+prefix)
	}
	if get("include.schema.changes", "true") == "true" {
		topics = append(topics, prefix)
	}
	if get("provide.transaction.metadata", "false") == "true" {
		topics = append(topics, prefix+delim+get("topic.transaction", "transaction"))
	}
	dropped, err := filteredTopics(p)
	if err != nil {
		return nil, err
	}
	kept := topics[:0]
	for _, t := range topics {
		if !slices.ContainsFunc(dropped, func(re *regexp.Regexp) bool { return re.MatchString(t) }) {
			kept = append(kept, t)
		}
	}
	return kept, nil
}

// filteredTopics are the patterns of the topics whose every record a transform drops: Kafka's Filter
// under a TopicNameMatches predicate, not negated (Java's Matcher.matches: the whole name).
func filteredTopics(p map[string]string) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, name := range strings.Split(p["debezium.transforms"], ",") {
		name = strings.TrimSpace(name)
		tr := "debezium.transforms." + name + "."
		if name == "" || p[tr+"type"] != "org.apache.kafka.connect.transforms.Filter" || p[tr+"negate"] == "true" {
			continue
		}
		pred := "debezium.predicates." + p[tr+"predicate"] + "."
		if p[tr+"predicate"] == "" || p[pred+"type"] != "org.apache.kafka.connect.transforms.predicates.TopicNameMatches" {
			continue
		}
		re, err := regexp.Compile(`^(?:` + p[pred+"pattern"] + `)$`)
		if err != nil {
			return nil, fmt.Errorf("debeziumserver: %spattern: %w", pred, err)
		}
		out = append(out, re)
	}
	return out, nil
}
