"""`python -m seg.report <study dir> [--plan] [--budget-hours H]` and the `seg-report` command: seg.study.report."""

from seg.study.report import main

if __name__ == "__main__":
    main()
