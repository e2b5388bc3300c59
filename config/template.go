package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"

	sockaddr "github.com/hashicorp/go-sockaddr"
	sockaddrtemplate "github.com/hashicorp/go-sockaddr/template"
)

// sockaddrFuncs mirror the functions of github.com/hashicorp/go-sockaddr/template,
// which evaluates the templates; this copy is only used to parse a template
// first and refuse loops and definitions before it runs.
var sockaddrFuncs = template.FuncMap{
	"GetAllInterfaces":     sockaddr.GetAllInterfaces,
	"GetDefaultInterfaces": sockaddr.GetDefaultInterfaces,
	"GetPrivateInterfaces": sockaddr.GetPrivateInterfaces,
	"GetPublicInterfaces":  sockaddr.GetPublicInterfaces,
	"sort":                 sockaddr.SortIfBy,
	"exclude":              sockaddr.ExcludeIfs,
	"include":              sockaddr.IncludeIfs,
	"attr":                 sockaddrAttr,
	"join":                 sockaddr.JoinIfAddrs,
	"limit":                sockaddr.LimitIfAddrs,
	"offset":               sockaddr.OffsetIfAddrs,
	"unique":               sockaddr.UniqueIfAddrsBy,
	"math":                 sockaddr.IfAddrsMath,
	"GetPrivateIP":         sockaddr.GetPrivateIP,
	"GetPrivateIPs":        sockaddr.GetPrivateIPs,
	"GetPublicIP":          sockaddr.GetPublicIP,
	"GetPublicIPs":         sockaddr.GetPublicIPs,
	"GetInterfaceIP":       sockaddr.GetInterfaceIP,
	"GetInterfaceIPs":      sockaddr.GetInterfaceIPs,
}

func sockaddrAttr(selector string, v any) (string, error) {
	switch v := v.(type) {
	case sockaddr.IfAddr:
		return sockaddr.IfAttr(selector, v)
	case sockaddr.IfAddrs:
		return sockaddr.IfAttrs(selector, v)
	}
	return "", fmt.Errorf("attr %s: not an interface address (%T)", selector, v)
}

const maxTemplateOutput = 4096

var errTemplateTooLong = errors.New("result longer than 4096 bytes")

// resolveTemplate evaluates a go-sockaddr template. Strings without "{{"
// are returned unchanged. Loops and template definitions are refused: an
// address template needs neither, and a loop could run for ever.
func (st *state) resolveTemplate(s string) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	t, err := template.New("").Option("missingkey=error").Funcs(sockaddrFuncs).Parse(s)
	if err != nil {
		return "", fmt.Errorf("bad template: %w", err)
	}
	if err := plainTemplate(t.Tree.Root); err != nil {
		return "", err
	}
	if len(t.Templates()) > 1 {
		return "", errors.New("bad template: {{define}} and {{block}} are not allowed")
	}
	st.ifOnce.Do(func() { st.ifs, st.ifErr = st.interfaces() })
	if st.ifErr != nil {
		return "", fmt.Errorf("list network interfaces: %w", st.ifErr)
	}
	out, err := sockaddrtemplate.ParseIfAddrs(s, st.ifs)
	if err != nil {
		return "", fmt.Errorf("template: %w", err)
	}
	if len(out) > maxTemplateOutput {
		return "", errTemplateTooLong
	}
	return strings.TrimSpace(out), nil
}

// plainTemplate refuses range loops and template calls.
func plainTemplate(n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return nil
		}
		for _, c := range n.Nodes {
			if err := plainTemplate(c); err != nil {
				return err
			}
		}
	case *parse.RangeNode:
		return errors.New("bad template: {{range}} is not allowed")
	case *parse.TemplateNode:
		return errors.New("bad template: {{template}} is not allowed")
	case *parse.IfNode:
		return firstErr(plainTemplate(n.List), plainTemplate(n.ElseList))
	case *parse.WithNode:
		return firstErr(plainTemplate(n.List), plainTemplate(n.ElseList))
	}
	return nil
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// templates resolves every key that accepts a go-sockaddr template.
func (st *state) templates(c *Config) {
	st.template("listen.http", &c.Listen.HTTP)
	st.template("listen.https", &c.Listen.HTTPS)
	st.template("probe.listen", &c.Probe.Listen)
	st.template("admin.listen", &c.Admin.Listen)
	st.template("drain.advertise_url", &c.Drain.AdvertiseURL)
	st.template("peer.listen", &c.Peer.Listen)
	for i := range c.Peer.Peers {
		st.template("peer.peers["+strconv.Itoa(i)+"]", &c.Peer.Peers[i])
	}
	for i := range c.Health.Checks {
		st.template("health.check["+strconv.Itoa(i)+"].address", &c.Health.Checks[i].Address)
	}
}

func (st *state) template(key string, v *string) {
	out, err := st.resolveTemplate(*v)
	if err != nil {
		st.errorf(key, "%q: %v", *v, err)
		return
	}
	if out == *v {
		return
	}
	if strings.Contains(out, "{{") {
		st.errorf(key, "template %q resolved to %q, itself a template", *v, out)
		return
	}
	if out == "" {
		st.errorf(key, "template %q resolved to nothing (no matching interface address?)", *v)
		return
	}
	// "{{ GetPrivateIP }}:80" resolving to ":80" would silently listen on
	// every interface: the template named an address and found none.
	if strings.HasPrefix(out, ":") && !strings.HasPrefix(*v, ":") {
		st.errorf(key, "template %q resolved to %q: no address (no matching interface?)", *v, out)
		return
	}
	st.fromTemplate[key] = *v
	*v = out
}
