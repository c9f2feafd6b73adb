from image_repo.cli.main import main

main()
