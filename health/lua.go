package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Mode is how Argo CD loads a script: built-in checks run with Lua's open
// libraries (string, math, ...); checks pasted into argocd-cm without
// useOpenLibs get only base, table, package and a safe os.
type Mode int

const (
	OpenLibs Mode = iota
	SafeLibs
)

func (m Mode) String() string {
	if m == OpenLibs {
		return "open libraries"
	}
	return "safe libraries"
}

// Status is what a health script returns, with Argo CD's JSON shape (the
// tests decode it into gitops-engine's health.HealthStatus as well).
type Status struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
}

// Health status codes Argo CD accepts.
const (
	Healthy     = "Healthy"
	Progressing = "Progressing"
	Degraded    = "Degraded"
	Suspended   = "Suspended"
	Missing     = "Missing"
	Unknown     = "Unknown"
)

// timeout is Argo CD's limit on one script run.
const timeout = time.Second

// Evaluate runs a health script against an object as Argo CD does: a fresh
// sandboxed VM, the object as the global obj, a one second limit, and the
// returned table decoded into a HealthStatus.
func Evaluate(script string, obj *unstructured.Unstructured, mode Mode) (*Status, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: mode == SafeLibs})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOS},
	} {
		l.Push(l.NewFunction(lib.open))
		l.Push(lua.LString(lib.name))
		l.Call(1, 0)
	}
	l.PreloadModule(lua.OsLibName, safeOSLoader)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", toLua(l, obj.Object))
	if err := l.DoString(script); err != nil {
		return nil, err
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return nil, errors.New("the health script did not return a table")
	}
	data, err := json.Marshal(fromLua(ret))
	if err != nil {
		return nil, err
	}
	var hs Status
	if err := json.Unmarshal(data, &hs); err != nil {
		return nil, err
	}
	if !validStatus(hs.Status) {
		return nil, fmt.Errorf("the health script returned an invalid status %q", hs.Status)
	}
	return &hs, nil
}

func validStatus(s string) bool {
	switch s {
	case Healthy, Progressing, Degraded, Suspended, Missing, Unknown:
		return true
	}
	return false
}

// toLua converts decoded JSON into Lua values.
func toLua(l *lua.LState, v any) lua.LValue {
	switch t := v.(type) {
	case nil:
		return lua.LNil
	case bool:
		return lua.LBool(t)
	case string:
		return lua.LString(t)
	case int64:
		return lua.LNumber(t)
	case int:
		return lua.LNumber(t)
	case float64:
		return lua.LNumber(t)
	case map[string]any:
		tbl := l.NewTable()
		for k, item := range t {
			tbl.RawSetString(k, toLua(l, item))
		}
		return tbl
	case []any:
		tbl := l.NewTable()
		for _, item := range t {
			tbl.Append(toLua(l, item))
		}
		return tbl
	default:
		return lua.LString(fmt.Sprint(t))
	}
}

// fromLua converts a returned Lua table into Go values.
func fromLua(v lua.LValue) any {
	switch t := v.(type) {
	case *lua.LTable:
		if t.MaxN() > 0 {
			var list []any
			t.ForEach(func(_, item lua.LValue) { list = append(list, fromLua(item)) })
			return list
		}
		m := map[string]any{}
		t.ForEach(func(k, item lua.LValue) { m[k.String()] = fromLua(item) })
		return m
	case lua.LString:
		return string(t)
	case lua.LNumber:
		return float64(t)
	case lua.LBool:
		return bool(t)
	default:
		return nil
	}
}

// openSafeOS and safeOSLoader give scripts an os library with only time and
// date, as Argo CD does.
func openSafeOS(l *lua.LState) int {
	tbl := l.NewTable()
	l.SetFuncs(tbl, safeOSFuncs)
	l.SetGlobal(lua.OsLibName, tbl)
	l.Push(tbl)
	return 1
}

func safeOSLoader(l *lua.LState) int {
	tbl := l.NewTable()
	l.SetFuncs(tbl, safeOSFuncs)
	l.Push(tbl)
	return 1
}

var safeOSFuncs = map[string]lua.LGFunction{
	"time": func(l *lua.LState) int { l.Push(lua.LNumber(time.Now().Unix())); return 1 },
	"date": func(l *lua.LState) int {
		l.Push(lua.LString(time.Now().UTC().Format(time.RFC3339)))
		return 1
	},
}
