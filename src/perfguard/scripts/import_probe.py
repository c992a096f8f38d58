"""Import probe: parse Python files and report their imports, classes and suppressions as JSON.

Usage: `python import_probe.py MANIFEST.json`, where the manifest is
`{"files": [{"path": "src/pkg/a.py", "module": "pkg.a", "is_package": false}, ...]}`,
optionally with `"introspected_classes": ["pydantic.BaseModel", ...]`: dotted names of base
classes or class decorators whose classes have their annotations read when the class is created,
even under `from __future__ import annotations`.
The probe writes one JSON document to stdout, with one entry per manifest file in manifest
order. It exits 0 when it wrote the document (per-file failures are `error` entries) and 2 when
the manifest itself is unusable.

The probe runs under the target's own interpreter (CPython 3.7 or newer), so this file uses
only the standard library and 3.7 syntax. It is the only place that parses user source.
Lines and columns in the output are 1-based.
"""

import ast
import io
import json
import re
import sys
import tokenize
from collections import namedtuple

PROBE_VERSION = 1

# Headroom for deeply nested but legal code. The walkers below are iterative, so this limit
# only affects the checks inside the interpreter's own parser.
RECURSION_LIMIT = 10000

_SUPPRESSION_RE = re.compile(r"#\s*perfguard:\s*ignore(?:\[([^\]]*)\])?(.*)$")
_TYPING_MODULES = ("typing", "typing_extensions")
_IMPORT_ERRORS = ("ImportError", "ModuleNotFoundError", "Exception", "BaseException")

# PEP 649 (Python 3.14) makes annotations lazy, so they no longer run at definition time.
ANNOTATIONS_ARE_LAZY = sys.version_info >= (3, 14)

_FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef)
_TRY_NODES = tuple(
    node_type
    for node_type in (getattr(ast, "Try", None), getattr(ast, "TryStar", None))
    if node_type is not None
)
_TYPE_ALIAS_NODE = getattr(ast, "TypeAlias", None)

# Context of a node during the walk. `typing` marks code that only a type checker sees.
# `deferred` marks code that runs when a function is called. `in_try` marks the body of a `try`
# whose handlers catch ImportError. `scope` is "module", "class" or "function".
Context = namedtuple("Context", ["typing", "deferred", "in_try", "qualname", "scope"])
_MODULE_CONTEXT = Context(False, False, False, "", "module")


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: import_probe.py MANIFEST.json\n")
        return 2
    try:
        with open(argv[1], "rb") as manifest_file:
            manifest = json.loads(manifest_file.read().decode("utf-8"))
        entries = _validate_manifest(manifest)
        introspected = _validate_introspected(manifest)
    except (OSError, ValueError) as e:
        sys.stderr.write("import_probe: invalid manifest {!r}: {}\n".format(argv[1], e))
        return 2
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
    files = [
        analyze_file(entry["path"], entry["module"], entry["is_package"], introspected)
        for entry in entries
    ]
    document = {
        "probe_version": PROBE_VERSION,
        "python": "{}.{}.{}".format(*sys.version_info[:3]),
        "files": files,
    }
    sys.stdout.write(json.dumps(document, sort_keys=True))
    sys.stdout.write("\n")
    sys.stdout.flush()
    return 0


def _validate_manifest(manifest):
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise ValueError('expected an object with a "files" list')
    entries = []
    for index, entry in enumerate(manifest["files"]):
        if not isinstance(entry, dict):
            raise ValueError("files[{}] is not an object".format(index))
        path = entry.get("path")
        module = entry.get("module")
        is_package = entry.get("is_package", False)
        if not isinstance(path, str) or not isinstance(module, str):
            raise ValueError('files[{}] needs string "path" and "module"'.format(index))
        if not isinstance(is_package, bool):
            raise ValueError('files[{}] "is_package" must be a boolean'.format(index))
        entries.append({"path": path, "module": module, "is_package": is_package})
    return entries


def _validate_introspected(manifest):
    names = manifest.get("introspected_classes", [])
    if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
        raise ValueError('"introspected_classes" must be a list of dotted names')
    return frozenset(names)


def analyze_file(path, module, is_package, introspected=frozenset()):
    """Parse one file into its probe entry. Any failure becomes the `error` field."""
    result = {
        "path": path,
        "module": module,
        "lines": 0,
        "error": None,
        "imports": [],
        "classes": [],
        "runtime_uses_of_typing_names": [],
        "suppressions": [],
        "future_annotations": False,
    }
    try:
        with open(path, "rb") as source_file:
            data = source_file.read()
    except OSError as e:
        result["error"] = _error_entry(e)
        return result
    result["lines"] = len(data.splitlines())
    try:
        # ast.parse on bytes honours PEP 263 coding cookies and a UTF-8 BOM.
        tree = ast.parse(data, filename=path)
        analysis = _FileAnalyzer(tree, module, is_package, introspected)
        analysis.run()
    except Exception as e:  # Each file fails on its own: SyntaxError, MemoryError, ...
        result["error"] = _error_entry(e)
        return result
    result["imports"] = analysis.imports
    result["classes"] = analysis.classes
    result["runtime_uses_of_typing_names"] = analysis.runtime_uses
    result["future_annotations"] = analysis.future_annotations
    if b"perfguard:" in data:
        try:
            result["suppressions"] = find_suppressions(data)
        except (SyntaxError, tokenize.TokenError) as e:
            result["error"] = _error_entry(e)
    return result


def _error_entry(error):
    line = getattr(error, "lineno", None) if isinstance(error, SyntaxError) else None
    column = getattr(error, "offset", None) if isinstance(error, SyntaxError) else None
    if isinstance(error, SyntaxError):
        message = error.msg or str(error)
    else:
        message = str(error) or type(error).__name__
    return {
        "type": type(error).__name__,
        "message": message,
        "line": line if isinstance(line, int) else None,
        "column": column if isinstance(column, int) else None,
    }


def find_suppressions(data):
    """Return `# perfguard: ignore[rule, ...] reason` comments found with tokenize."""
    suppressions = []
    for token in tokenize.tokenize(io.BytesIO(data).readline):
        if token.type != tokenize.COMMENT:
            continue
        match = _SUPPRESSION_RE.search(token.string)
        if match is None:
            continue
        rules = [rule.strip() for rule in (match.group(1) or "").split(",") if rule.strip()]
        suppressions.append(
            {
                "line": token.start[0],
                "rules": rules,
                "reason": match.group(2).strip(),
            }
        )
    return suppressions


def _const_str(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if sys.version_info < (3, 8) and isinstance(node, ast.Str):
        return node.s
    return None


class _FileAnalyzer(object):
    """Walk one module's AST (iteratively, so deep nesting cannot overflow the stack)."""

    def __init__(self, tree, module, is_package, introspected=frozenset()):
        self.tree = tree
        self.introspected = introspected
        # Local name to the dotted name it was imported as, for matching `introspected`.
        self.imported_as = {}
        self.module = module
        self.package = module if is_package else module.rpartition(".")[0]
        self.imports = []
        self.classes = []
        self.runtime_uses = []
        self.future_annotations = False
        self.type_checking_names = {"TYPE_CHECKING"}
        self.typing_module_names = set()
        self.importlib_names = set()
        self.import_module_names = set()
        self.cast_names = set()
        self.typing_bound = set()
        self.runtime_bound = set()

    def run(self):
        self._collect_aliases()
        self._walk_imports()
        typing_only = self.typing_bound - self.runtime_bound
        if typing_only:
            self._walk_runtime_uses(typing_only)
        self.imports.sort(key=lambda record: (record["line"], record["column"]))
        self.classes.sort(key=lambda record: (record["line"], record["qualname"]))
        self.runtime_uses.sort(key=lambda use: (use["line"], use["column"], use["name"]))

    # -- Pass 1: names that refer to typing, TYPE_CHECKING, importlib and cast ---------------

    def _collect_aliases(self):
        for statement in self.tree.body:
            if isinstance(statement, ast.ImportFrom) and statement.module == "__future__":
                if any(alias.name == "annotations" for alias in statement.names):
                    self.future_annotations = True
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    bound = alias.asname or alias.name
                    if alias.asname:
                        self.imported_as[bound] = alias.name
                    else:
                        head = alias.name.partition(".")[0]
                        self.imported_as[head] = head
                    if alias.name in _TYPING_MODULES:
                        self.typing_module_names.add(bound)
                    elif alias.name == "importlib":
                        self.importlib_names.add(bound)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                for alias in node.names:
                    bound = alias.asname or alias.name
                    self.imported_as[bound] = "{}.{}".format(node.module, alias.name)
                    if node.module in _TYPING_MODULES and alias.name == "TYPE_CHECKING":
                        self.type_checking_names.add(bound)
                    elif node.module in _TYPING_MODULES and alias.name == "cast":
                        self.cast_names.add(bound)
                    elif node.module == "importlib" and alias.name == "import_module":
                        self.import_module_names.add(bound)

    def _is_type_checking(self, node):
        if isinstance(node, ast.Name):
            return node.id in self.type_checking_names
        return (
            isinstance(node, ast.Attribute)
            and node.attr == "TYPE_CHECKING"
            and isinstance(node.value, ast.Name)
            and node.value.id in self.typing_module_names
        )

    def _runtime_truth(self, test):
        """Evaluate an `if` test with TYPE_CHECKING false: True, False or None (unknown)."""
        if self._is_type_checking(test):
            return False
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            inner = self._runtime_truth(test.operand)
            return None if inner is None else not inner
        if isinstance(test, ast.BoolOp):
            values = [self._runtime_truth(value) for value in test.values]
            if isinstance(test.op, ast.And):
                if False in values:
                    return False
                return True if all(value is True for value in values) else None
            if True in values:
                return True
            return False if all(value is False for value in values) else None
        return None

    def _branch_contexts(self, node, context):
        truth = self._runtime_truth(node.test)
        body = context._replace(typing=True) if truth is False else context
        orelse = context._replace(typing=True) if truth is True else context
        return body, orelse

    # -- Pass 2: imports, classes and module-level bindings ----------------------------------

    def _walk_imports(self):
        stack = [(statement, _MODULE_CONTEXT) for statement in reversed(self.tree.body)]
        while stack:
            node, context = stack.pop()
            children = self._visit_for_imports(node, context)
            if children is None:
                children = [(child, context) for child in ast.iter_child_nodes(node)]
            stack.extend(reversed(children))

    def _visit_for_imports(self, node, context):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            self._record_import_statement(node, context)
            return []
        if isinstance(node, ast.If):
            body, orelse = self._branch_contexts(node, context)
            return (
                [(node.test, context)]
                + [(child, body) for child in node.body]
                + [(child, orelse) for child in node.orelse]
            )
        if _TRY_NODES and isinstance(node, _TRY_NODES):
            guarded = context._replace(in_try=_catches_import_error(node))
            return (
                [(child, guarded) for child in node.body]
                + [(child, context) for child in node.handlers]
                + [(child, context) for child in node.orelse + node.finalbody]
            )
        if isinstance(node, _FUNCTION_NODES):
            self._bind(node.name, context)
            inner = context._replace(
                deferred=True,
                scope="function",
                qualname=context.qualname + node.name + ".<locals>.",
            )
            outer = list(node.decorator_list) + _argument_defaults(node.args)
            outer += _annotations_of(node)
            return [(child, context) for child in outer] + [(child, inner) for child in node.body]
        if isinstance(node, ast.Lambda):
            inner = context._replace(deferred=True, scope="function")
            return [(child, context) for child in _argument_defaults(node.args)] + [
                (node.body, inner)
            ]
        if isinstance(node, ast.ClassDef):
            self._record_class(node, context)
            self._bind(node.name, context)
            inner = context._replace(scope="class", qualname=context.qualname + node.name + ".")
            outer = list(node.decorator_list) + list(node.bases)
            outer += [keyword.value for keyword in node.keywords]
            return [(child, context) for child in outer] + [(child, inner) for child in node.body]
        if isinstance(node, ast.Call):
            self._record_dynamic_import(node, context)
            return None
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            self._bind(node.id, context)
            return []
        return None

    def _bind(self, name, context):
        if context.scope == "module" and not context.typing:
            self.runtime_bound.add(name)

    def _context_kind(self, context):
        if context.typing:
            return "typing"
        return "deferred" if context.deferred else "runtime"

    def _record_import_statement(self, node, context):
        if isinstance(node, ast.Import):
            for alias in node.names:
                self._add_import(node, context, alias.name, 0, [], "import")
                self._bind_import(alias.asname or alias.name.partition(".")[0], context)
            return
        names = [alias.name for alias in node.names]
        if node.module == "__future__":
            return
        module = self._resolve(node.module or "", node.level)
        self._add_import(
            node,
            context,
            module,
            node.level,
            names,
            "from",
            raw="." * node.level + (node.module or ""),
        )
        for alias in node.names:
            if alias.name != "*":
                self._bind_import(alias.asname or alias.name, context)

    def _bind_import(self, name, context):
        if context.scope != "module":
            return
        if context.typing:
            self.typing_bound.add(name)
        else:
            self.runtime_bound.add(name)

    def _add_import(self, node, context, module, level, names, kind, raw=None):
        self.imports.append(
            {
                "module": module,
                "raw": raw if raw is not None else module,
                "line": node.lineno,
                "column": node.col_offset + 1,
                "level": level,
                "names": names,
                "kind": kind,
                "context": self._context_kind(context),
                "in_try_import_error": context.in_try,
            }
        )

    def _resolve(self, name, level, package=None):
        """Resolve a relative import like importlib does, or return None above the top level."""
        if level == 0:
            return name
        base = self.package if package is None else package
        parts = base.split(".") if base else []
        if level - 1 > len(parts) - 1 or not parts:
            return None
        parts = parts[: len(parts) - (level - 1)]
        if name:
            parts.append(name)
        return ".".join(parts)

    def _record_dynamic_import(self, node, context):
        func = node.func
        if isinstance(func, ast.Name) and func.id == "__import__":
            kind = "__import__"
        elif isinstance(func, ast.Name) and func.id in self.import_module_names:
            kind = "importlib"
        elif (
            isinstance(func, ast.Attribute)
            and func.attr == "import_module"
            and isinstance(func.value, ast.Name)
            and func.value.id in self.importlib_names
        ):
            kind = "importlib"
        else:
            return
        if not node.args:
            return
        name = _const_str(node.args[0])
        if name is None:
            return
        level = len(name) - len(name.lstrip("."))
        module = name
        if level:
            module = self._resolve_dynamic(name[level:], level, node)
        self._add_import(node, context, module, level, [], kind, raw=name)

    def _resolve_dynamic(self, name, level, node):
        package_arg = None
        for keyword in node.keywords:
            if keyword.arg == "package":
                package_arg = keyword.value
        if package_arg is None and len(node.args) > 1:
            package_arg = node.args[1]
        if package_arg is None:
            return None
        if isinstance(package_arg, ast.Name) and package_arg.id == "__name__":
            package = self.module
        elif isinstance(package_arg, ast.Name) and package_arg.id == "__package__":
            package = self.package
        else:
            package = _const_str(package_arg)
        if package is None:
            return None
        return self._resolve(name, level, package=package)

    def _record_class(self, node, context):
        first_line = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
        end_line = _end_line(node)
        body_start = _start_line(node.body[0]) if node.body else node.lineno
        self.classes.append(
            {
                "name": node.name,
                "qualname": context.qualname + node.name,
                "line": first_line,
                "end_line": end_line,
                "lines": end_line - first_line + 1,
                "body_lines": max(end_line - body_start + 1, 0),
            }
        )

    # -- Pass 3: TYPE_CHECKING-only names evaluated while the module runs --------------------

    def _walk_runtime_uses(self, typing_only):
        annotations_run = not self.future_annotations and not ANNOTATIONS_ARE_LAZY
        stack = [(statement, "module-level expression") for statement in reversed(self.tree.body)]
        while stack:
            node, use = stack.pop()
            children = self._visit_for_uses(node, use, typing_only, annotations_run)
            if children is None:
                children = [(child, use) for child in ast.iter_child_nodes(node)]
            stack.extend(reversed(children))

    def _visit_for_uses(self, node, use, typing_only, annotations_run):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load) and node.id in typing_only:
                self.runtime_uses.append(
                    {
                        "name": node.id,
                        "line": node.lineno,
                        "column": node.col_offset + 1,
                        "use": use,
                    }
                )
            return []
        if use.startswith("annotation read by ") and _const_str(node) is not None:
            self._record_quoted_uses(node, use, typing_only)
            return []
        if isinstance(node, ast.If):
            truth = self._runtime_truth(node.test)
            children = [(node.test, use)]
            if truth is not False:
                children += [(child, use) for child in node.body]
            if truth is not True:
                children += [(child, use) for child in node.orelse]
            return children
        if isinstance(node, _FUNCTION_NODES):
            children = [(child, "decorator") for child in node.decorator_list]
            children += [(child, "default") for child in _argument_defaults(node.args)]
            if annotations_run:
                children += [(child, "annotation") for child in _annotations_of(node)]
            return children
        if isinstance(node, ast.Lambda):
            return [(child, "default") for child in _argument_defaults(node.args)]
        if isinstance(node, ast.ClassDef):
            children = [(child, "decorator") for child in node.decorator_list]
            children += [(child, "base class") for child in node.bases]
            children += [(keyword.value, "class keyword") for keyword in node.keywords]
            reader = self._introspecting_class(node)
            for child in node.body:
                if reader is not None and isinstance(child, ast.AnnAssign):
                    children.append((child.target, "class-level expression"))
                    children.append((child.annotation, "annotation read by " + reader))
                    if child.value is not None:
                        children.append((child.value, "class-level expression"))
                else:
                    children.append((child, "class-level expression"))
            return children
        if isinstance(node, ast.AnnAssign):
            children = [(node.target, use)]
            if annotations_run:
                children.append((node.annotation, "annotation"))
            if node.value is not None:
                children.append((node.value, use))
            return children
        if _TYPE_ALIAS_NODE is not None and isinstance(node, _TYPE_ALIAS_NODE):
            return []  # The value of a `type X = ...` statement is evaluated lazily.
        if isinstance(node, ast.Call):
            return self._call_use_children(node, use)
        return None

    def _record_quoted_uses(self, node, use, typing_only):
        """Record names in a quoted annotation that a library evaluates, at the quote's place."""
        try:
            expression = ast.parse(_const_str(node).strip(), mode="eval")
        except SyntaxError:
            return
        for inner in ast.walk(expression):
            if isinstance(inner, ast.Name) and inner.id in typing_only:
                self.runtime_uses.append(
                    {
                        "name": inner.id,
                        "line": node.lineno,
                        "column": node.col_offset + 1,
                        "use": use,
                    }
                )

    def _introspecting_class(self, node):
        """Return the configured base or decorator that reads this class's annotations."""
        if not self.introspected:
            return None
        for expression in list(node.bases) + list(node.decorator_list):
            if isinstance(expression, ast.Call):
                expression = expression.func
            name = self._dotted_name(expression)
            if name in self.introspected:
                return name
        return None

    def _dotted_name(self, node):
        parts = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if not isinstance(node, ast.Name):
            return None
        head = self.imported_as.get(node.id, node.id)
        return ".".join([head] + list(reversed(parts)))

    def _call_use_children(self, node, use):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else None
        is_cast = name in self.cast_names or (
            isinstance(func, ast.Attribute)
            and func.attr == "cast"
            and isinstance(func.value, ast.Name)
            and func.value.id in self.typing_module_names
        )
        argument_use = use
        if name in ("isinstance", "issubclass"):
            argument_use = name
        children = [(func, use)]
        for index, argument in enumerate(node.args):
            children.append((argument, "cast" if is_cast and index == 0 else argument_use))
        children += [(keyword.value, use) for keyword in node.keywords]
        return children


def _catches_import_error(node):
    for handler in node.handlers:
        if handler.type is None:
            return True
        caught = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        for exception in caught:
            name = (
                exception.attr
                if isinstance(exception, ast.Attribute)
                else getattr(exception, "id", None)
            )
            if name in _IMPORT_ERRORS:
                return True
    return False


def _argument_defaults(arguments):
    return list(arguments.defaults) + [value for value in arguments.kw_defaults if value]


def _annotations_of(node):
    arguments = node.args
    every_argument = list(getattr(arguments, "posonlyargs", [])) + list(arguments.args)
    every_argument += list(arguments.kwonlyargs)
    every_argument += [arg for arg in (arguments.vararg, arguments.kwarg) if arg is not None]
    annotations = [arg.annotation for arg in every_argument if arg.annotation is not None]
    if node.returns is not None:
        annotations.append(node.returns)
    return annotations


def _start_line(statement):
    if sys.version_info < (3, 8) and isinstance(statement, ast.Expr):
        text = _const_str(statement.value)
        if text is not None:
            # Python 3.7 puts a multi-line string on its last line, so step back over its
            # newlines. NOTE: backslash-newline continuations inside it are not counted.
            return statement.lineno - text.count("\n")
    return statement.lineno


def _end_line(node):
    end_line = getattr(node, "end_lineno", None)
    if end_line is not None:
        return end_line
    # NOTE: Python 3.7 has no end positions, so the last line is the highest line of any
    # descendant. A closing bracket alone on the class's last line is not counted there.
    return max(getattr(child, "lineno", node.lineno) for child in ast.walk(node))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
