package relay

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestEveryRefusalHasACode reads the relay's source: every error and
// haven-gone message it builds names an ErrorCode that is not empty, and
// every call of a function that sends one passes a code, so that clients
// and tests act on the code and never on the words. A message built
// without one fails here, wherever it is added.
func TestEveryRefusalHasACode(t *testing.T) {
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		if name := e.Name(); strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") {
			f, err := parser.ParseFile(fset, name, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		}
	}
	// The functions that send a refusal with the code their caller gives,
	// and which of their arguments is the code.
	codeArg := map[string]int{"failCode": 1, "refuse": 5}
	built, calls := 0, 0
	for _, f := range files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				if !isSelector(n.Type, "wire", "Message") {
					return true
				}
				var typ string
				var code ast.Expr
				for _, e := range n.Elts {
					kv, ok := e.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					switch key, _ := kv.Key.(*ast.Ident); {
					case key == nil:
					case key.Name == "Type":
						if sel, ok := kv.Value.(*ast.SelectorExpr); ok {
							typ = sel.Sel.Name
						}
					case key.Name == "ErrorCode":
						code = kv.Value
					}
				}
				if typ != "TypeError" && typ != "TypeHavenGone" {
					return true
				}
				built++
				if code == nil || isEmptyString(code) {
					t.Errorf("%s: a %s message without an ErrorCode", fset.Position(n.Pos()), typ)
				}
			case *ast.CallExpr:
				name := ""
				switch fn := n.Fun.(type) {
				case *ast.Ident:
					name = fn.Name
				case *ast.SelectorExpr:
					name = fn.Sel.Name
				}
				i, ok := codeArg[name]
				if !ok || len(n.Args) <= i {
					return true
				}
				calls++
				if isEmptyString(n.Args[i]) {
					t.Errorf("%s: %s called without a code", fset.Position(n.Pos()), name)
				}
			}
			return true
		})
	}
	// The walk found what it is meant to check: a relay whose refusals it
	// could no longer see would pass for the wrong reason.
	if built < 10 || calls < 5 {
		t.Fatalf("found %d error messages and %d refusing calls in the relay's source; the check no longer sees them", built, calls)
	}
}

func isSelector(e ast.Expr, pkg, name string) bool {
	sel, ok := e.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != name {
		return false
	}
	id, ok := sel.X.(*ast.Ident)
	return ok && id.Name == pkg
}

func isEmptyString(e ast.Expr) bool {
	lit, ok := e.(*ast.BasicLit)
	return ok && lit.Kind == token.STRING && (lit.Value == `""` || lit.Value == "``")
}
