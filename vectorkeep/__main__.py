from vectorkeep.cli import main

raise SystemExit(main())
