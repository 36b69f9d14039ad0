"""A small pure-Python pprof decoder for the contprof tests (no protobuf
package: the wire format is varints and length-delimited fields).

    prof = load_dir("profiles")          # every *.pprof.gz, merged
    prof.total("cpu-time", func="heavy") # leaf ("self") value of a function
"""
import glob
import gzip
import os


def _varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, i
        shift += 7


def _fields(buf):
    """Yield (field number, wire type, value) for one message."""
    i, n = 0, len(buf)
    while i < n:
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            val, i = _varint(buf, i)
        elif wt == 2:
            ln, i = _varint(buf, i)
            val, i = buf[i:i + ln], i + ln
        elif wt == 1:
            val, i = int.from_bytes(buf[i:i + 8], "little"), i + 8
        elif wt == 5:
            val, i = int.from_bytes(buf[i:i + 4], "little"), i + 4
        else:
            raise ValueError("bad wire type %d" % wt)
        yield num, wt, val


def _packed(wt, val):
    if wt == 0:
        return [val]
    out, i = [], 0
    while i < len(val):
        v, i = _varint(val, i)
        out.append(v)
    return out


def _signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


class Profile:
    def __init__(self):
        self.sample_types = []   # [(type, unit)]
        self.samples = []        # [(location ids leaf first, values, labels dict)]
        self.locations = {}      # id -> [(function id, line)]
        self.functions = {}      # id -> (name, filename)
        self.start_lines = {}    # id -> Function.start_line
        self.loc_mapping = {}    # location id -> mapping id
        self.mappings = {}       # mapping id -> file name ("[python]", a library path)
        self.comments = []
        self.time_nanos = 0      # wall-clock start (unix ns)
        self.duration_nanos = 0

    def stack(self, sample):
        """[(function name, filename, line)] leaf first."""
        out = []
        for lid in sample[0]:
            for fid, line in self.locations.get(lid, []):
                name, filename = self.functions.get(fid, ("?", "?"))
                out.append((name, filename, line))
        return out

    def modules(self, sample):
        """Mapping file names of the sample's frames, leaf first (one per
        location, as stack() has one entry per line of a location)."""
        out = []
        for lid in sample[0]:
            mod = self.mappings.get(self.loc_mapping.get(lid, 0), "")
            out += [mod] * max(1, len(self.locations.get(lid, [])))
        return out

    def index(self, type_name):
        for i, (t, _) in enumerate(self.sample_types):
            if t == type_name:
                return i
        raise KeyError("no sample type %s in %s" % (type_name, self.sample_types))


def _decode_sample(buf):
    locs, vals, labels = [], [], {}
    for num, wt, val in _fields(buf):
        if num == 1:
            locs += _packed(wt, val)
        elif num == 2:
            vals += [_signed(v) for v in _packed(wt, val)]
        elif num == 3:
            labels[len(labels)] = dict((n, v) for n, _, v in _fields(val))
    return locs, vals, labels


def decode(data):
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    raw_types, raw_samples, raw_locs, raw_funcs, strings, comments = [], [], [], [], [], []
    times = {}
    raw_maps = []
    for num, wt, val in _fields(data):
        if num == 3:
            raw_maps.append(dict((n, v) for n, _, v in _fields(val)))
        elif num == 1:
            raw_types.append(dict((n, v) for n, _, v in _fields(val)))
        elif num == 2:
            raw_samples.append(_decode_sample(val))
        elif num == 4:
            raw_locs.append(val)
        elif num == 5:
            raw_funcs.append(dict((n, v) for n, _, v in _fields(val)))
        elif num == 6:
            strings.append(val.decode("utf-8", "replace"))
        elif num == 13:
            comments += _packed(wt, val)
        elif num in (9, 10):  # time_nanos, duration_nanos
            times[num] = _signed(val)
    p = Profile()
    p.sample_types = [(strings[t.get(1, 0)], strings[t.get(2, 0)]) for t in raw_types]
    for f in raw_funcs:
        p.functions[f.get(1, 0)] = (strings[f.get(2, 0)], strings[f.get(4, 0)])
        p.start_lines[f.get(1, 0)] = _signed(f.get(5, 0))
    for mp in raw_maps:
        p.mappings[mp.get(1, 0)] = strings[mp.get(5, 0)]
    for buf in raw_locs:
        lid, lines = 0, []
        for num, _, val in _fields(buf):
            if num == 1:
                lid = val
            elif num == 2:
                p.loc_mapping[lid] = val
            elif num == 4:
                d = dict((n, v) for n, _, v in _fields(val))
                lines.append((d.get(1, 0), _signed(d.get(2, 0))))
        p.locations[lid] = lines
    for locs, vals, labels in raw_samples:
        named = {}
        for lab in labels.values():
            key = strings[lab.get(1, 0)]
            named[key] = strings[lab[2]] if lab.get(2) else _signed(lab.get(3, 0))
        p.samples.append((locs, vals, named))
    p.comments = [strings[c] for c in comments]
    p.time_nanos, p.duration_nanos = times.get(9, 0), times.get(10, 0)
    return p


class Merged:
    """Several profiles of one process (or many) viewed as one."""

    def __init__(self, profiles):
        self.profiles = profiles

    def rows(self, type_name):
        """Yield (stack, value, labels) for every sample with a value."""
        for stack, _, value, labels in self.rows_modules(type_name):
            yield stack, value, labels

    def rows_modules(self, type_name):
        """Yield (stack, modules, value, labels): rows() with each frame's
        mapping file name."""
        for p in self.profiles:
            try:
                i = p.index(type_name)
            except KeyError:
                continue
            for s in p.samples:
                if s[1][i]:
                    yield p.stack(s), p.modules(s), s[1][i], s[2]

    def total(self, type_name, func=None, inclusive=False, where=None):
        t = 0
        for stack, value, labels in self.rows(type_name):
            if where and not where(stack, labels):
                continue
            names = [f[0] for f in (stack if inclusive else stack[:1])]
            if func is None or any(n == func or n.endswith("." + func) for n in names):
                t += value
        return t

    def label_values(self, key):
        out = set()
        for p in self.profiles:
            for s in p.samples:
                if key in s[2]:
                    out.add(s[2][key])
        return out


def native_leaf(stack, mods):
    """Names of the native frames leafward of a stack's first Python frame
    (mapping "[python]"), from rows_modules' stack and mods."""
    out = []
    for f, md in zip(stack, mods):
        if md == "[python]":
            break
        out.append(f[0])
    return out


def load_dir(path, pattern="*.pprof.gz"):
    files = sorted(glob.glob(os.path.join(path, pattern)))
    profs = []
    for f in files:
        with open(f, "rb") as fh:
            profs.append(decode(fh.read()))
    return Merged(profs)
