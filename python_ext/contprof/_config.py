"""Settings for contprof: config files, environment and keyword options.

Precedence (the core enforces it whatever the call order): start(**kw) >
environment (CONTPROF_*, then DD_*) > config file > defaults. Config files:
CONTPROF_CONFIG (INI or TOML path) or else ./contprof.ini ([contprof]) and
./pyproject.toml ([tool.contprof], where tomllib exists).
"""
import os

from . import _contprof as _c


def _warn(msg):
    _c.log(_c.LOG_WARN, msg)


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _apply(items, src):
    for key, value in items:
        _c.config_set(str(key).replace("-", "_"), _text(value), src)


def _load_ini(path):
    import configparser  # only when there is a file to read
    cp = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as fh:
            cp.read_file(fh)
    except (OSError, configparser.Error) as exc:
        _warn("cannot read config file %s: %s" % (path, exc))
        return
    if cp.has_section("contprof"):
        _apply(cp.items("contprof"), _c.SRC_FILE)


def _load_toml(path, required):
    try:
        import tomllib
    except ImportError:
        if required:
            _warn("cannot read %s: TOML needs Python 3.11+ (tomllib); use an INI file" % path)
        return
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, ValueError) as exc:
        _warn("cannot read config file %s: %s" % (path, exc))
        return
    if path.endswith("pyproject.toml"):
        section = data.get("tool", {}).get("contprof", {})
    else:
        section = data.get("contprof", data)
    if isinstance(section, dict):
        _apply(section.items(), _c.SRC_FILE)


def load_files(explicit=None):
    """Load the config file(s) at file precedence."""
    path = explicit or os.environ.get("CONTPROF_CONFIG")
    if path:
        if path.endswith(".toml"):
            _load_toml(path, True)
        elif os.path.exists(path):
            _load_ini(path)
        else:
            _warn("config file %s not found" % path)
        return
    if os.path.exists("pyproject.toml"):
        _load_toml("pyproject.toml", False)
    if os.path.exists("contprof.ini"):
        _load_ini("contprof.ini")


# This front end's own defaults where they differ from the settings table
# (none at present: native frames, once off here, are on as on the JVM;
# see docs/DECISIONS.md, "Python native frames").
PYTHON_DEFAULTS = {}


def configure(options, service_default=None, config_file=None):
    """Reset, then apply defaults, files, environment and options."""
    _c.config_reset()
    for name, value in PYTHON_DEFAULTS.items():
        _c.config_set(name, value, _c.SRC_DEFAULT)
    if service_default:
        _c.config_set("service", service_default, _c.SRC_DEFAULT)
    load_files(config_file)
    _c.config_load_env()
    _apply(options.items(), _c.SRC_OPTION)


def settings():
    """The settings table (list of dicts: name, type, default, ...)."""
    return _c.settings_table()
