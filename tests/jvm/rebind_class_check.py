"""The class file embedded in jvm_agent/src/rebind_class.h is what javac
makes of jvm_agent/java/contprof/boot/Rebind.java.

    python3 rebind_class_check.py JDK_HOME SOURCE HEADER WORKDIR
"""
import os
import re
import shutil
import subprocess
import sys


def main():
    jdk, src, header, work = sys.argv[1:5]
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    subprocess.run([os.path.join(jdk, "bin", "javac"), "-g:none", "--release", "8", "-d", work, src], check=True)
    with open(os.path.join(work, "contprof", "boot", "Rebind.class"), "rb") as fh:
        built = fh.read()
    with open(header) as fh:
        body = fh.read().split("cp__rebind_class[] = {", 1)[1].split("};", 1)[0]
    embedded = bytes(int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]{2})", body))
    print("javac: %d bytes, embedded: %d bytes" % (len(built), len(embedded)))
    if built != embedded:
        print("FAIL(rebind_class): regenerate rebind_class.h (xxd -i of the class javac built in %s)" % work)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
