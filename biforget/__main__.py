from biforget.cli import main

main()
