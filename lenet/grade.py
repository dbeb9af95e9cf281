"""The teachers' grading command: ``python -m lenet.grade submissions/`` (see :mod:`course.grade`)."""
import sys

from course.grade import main

if __name__ == "__main__":
    sys.exit(main())
