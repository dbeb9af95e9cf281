"""The course's machinery: the notebook format, exercise generation, notebook execution and grading.

One module per job, all imported normally (``python -m course.exercises``, ``python -m course.execute``,
``python -m lenet.grade``); docs/authoring.md is the manual. Nothing here is imported by the lessons.
"""
