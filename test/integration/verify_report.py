#!/usr/bin/python3
"""Print the failed tests of every Kitchen verify (their JUnit files, kitchen.yml's
verifier writes one per instance), last: CI keeps only the end of `make test`'s
output, and Kitchen's own summary names the instance, not the test or why.

    verify_report.py DIRECTORY
"""
import glob
import os
import sys
import xml.etree.ElementTree as ET

TAIL_LINES = 25


def failures(path):
    for case in ET.parse(path).getroot().iter("testcase"):
        for problem in list(case.findall("failure")) + list(case.findall("error")):
            text = (problem.text or problem.get("message") or "").rstrip().splitlines()
            yield f"{case.get('classname')}::{case.get('name')}", text[-TAIL_LINES:]


def main(directory):
    for path in sorted(glob.glob(os.path.join(directory, "*.xml"))):
        instance = os.path.basename(path)[:-4]
        for test, lines in failures(path):
            print(f"--- {instance}: {test}")
            print("\n".join("    " + line for line in lines))


if __name__ == "__main__":
    main(sys.argv[1])
